//! Finding the credential in a request: `Authorization: Bearer`, then the API key in the
//! `x-api-key` header, the `api_key` query parameter, or the `api_key` cookie.

use std::fmt;

use axum::http::HeaderMap;

#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    ApiKey(String),
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credentials::None => "Credentials::None",
            Credentials::ApiKey(_) => "Credentials::ApiKey(<redacted>)",
            Credentials::Bearer(_) => "Credentials::Bearer(<redacted>)",
        })
    }
}

pub const API_KEY_HEADER: &str = "x-api-key";
pub const API_KEY_PARAMETER: &str = "api_key";

impl Credentials {
    /// From an HTTP request's headers and query string.
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Credentials {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let cookies = headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        Self::from_parts(
            header("authorization"),
            header(API_KEY_HEADER),
            query.and_then(|q| query_parameter(q, API_KEY_PARAMETER)),
            cookies.filter_map(|c| cookie_value(c, API_KEY_PARAMETER)).next(),
        )
    }

    /// From already separated pieces (the Lambda authorizer's event).
    pub fn from_parts(
        authorization: Option<&str>,
        api_key_header: Option<&str>,
        api_key_query: Option<String>,
        api_key_cookie: Option<String>,
    ) -> Credentials {
        if let Some(value) = authorization {
            let mut parts = value.splitn(2, ' ');
            let scheme = parts.next().unwrap_or_default();
            let token = parts.next().unwrap_or_default().trim();
            if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
                return Credentials::Bearer(token.to_string());
            }
            // A malformed Authorization header is still a presented credential: refuse it
            // rather than fall through to another one.
            return Credentials::Bearer(String::new());
        }
        if let Some(key) = api_key_header {
            return Credentials::ApiKey(key.trim().to_string());
        }
        if let Some(key) = api_key_query.or(api_key_cookie) {
            return Credentials::ApiKey(key);
        }
        Credentials::None
    }
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_parameter(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)? == name).then(|| percent_decode(value)).flatten()
    })
}

fn cookie_value(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"').to_string())
    })
}

/// application/x-www-form-urlencoded decoding; None on invalid escapes or UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn api_keys_are_found_in_header_query_and_cookie() {
        assert_eq!(
            Credentials::from_request(&headers(&[("x-api-key", "slk_a")]), None),
            Credentials::ApiKey("slk_a".into())
        );
        assert_eq!(
            Credentials::from_request(&headers(&[]), Some("limit=5&api_key=slk_%62")),
            Credentials::ApiKey("slk_b".into())
        );
        assert_eq!(
            Credentials::from_request(&headers(&[("cookie", "theme=dark; api_key=slk_c")]), None),
            Credentials::ApiKey("slk_c".into())
        );
        assert_eq!(
            Credentials::from_request(&headers(&[]), Some("limit=5")),
            Credentials::None
        );
    }

    #[test]
    fn bearer_wins_and_a_malformed_authorization_is_not_skipped() {
        let both = headers(&[("authorization", "Bearer abc"), ("x-api-key", "slk_a")]);
        assert_eq!(
            Credentials::from_request(&both, None),
            Credentials::Bearer("abc".into())
        );
        let basic = headers(&[("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", "slk_a")]);
        assert_eq!(
            Credentials::from_request(&basic, None),
            Credentials::Bearer(String::new())
        );
    }

    #[test]
    fn bad_percent_escapes_are_not_decoded() {
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("a%20b+c"), Some("a b c".into()));
    }

    #[test]
    fn debug_never_shows_the_credential() {
        assert!(!format!("{:?}", Credentials::ApiKey("slk_secret".into())).contains("secret"));
    }
}
