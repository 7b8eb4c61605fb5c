//! Finding the credential in a request: `Authorization: Bearer`, then the API key in the
//! `x-api-key` header, the `api_key` query parameter, or the `api_key` cookie.

use std::fmt;

use axum::http::HeaderMap;

#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    ApiKey(String),
    Bearer(String),
    /// A credential was presented but cannot be used as sent (unreadable, or a cookie on a
    /// request that changes something): refused, never skipped for another one.
    Malformed(&'static str),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("Credentials::None"),
            Credentials::ApiKey(_) => f.write_str("Credentials::ApiKey(<redacted>)"),
            Credentials::Bearer(_) => f.write_str("Credentials::Bearer(<redacted>)"),
            Credentials::Malformed(why) => write!(f, "Credentials::Malformed({why:?})"),
        }
    }
}

pub const API_KEY_HEADER: &str = "x-api-key";
pub const API_KEY_PARAMETER: &str = "api_key";

/// One place a credential may be: absent (`None`), present, or present but unreadable (the
/// reason).
pub type Found = Option<Result<String, &'static str>>;

/// Whether a request method changes nothing (a cookie, which a browser attaches to requests
/// another site makes, is accepted only then).
pub fn is_safe_method(method: &str) -> bool {
    matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD" | "OPTIONS")
}

impl Credentials {
    /// From an HTTP request's method, headers and query string.
    pub fn from_request(method: &str, headers: &HeaderMap, query: Option<&str>) -> Credentials {
        let header = |name: &str, unreadable: &'static str| -> Found {
            headers
                .get(name)
                .map(|v| v.to_str().map(str::to_string).map_err(|_| unreadable))
        };
        let mut cookie: Found = None;
        for value in headers.get_all(axum::http::header::COOKIE) {
            match value.to_str() {
                Ok(text) => {
                    if let Some(found) = cookie_value(text, API_KEY_PARAMETER) {
                        cookie = Some(Ok(found));
                        break;
                    }
                }
                Err(_) if contains(value.as_bytes(), b"api_key=") => {
                    cookie = Some(Err("the api_key cookie is not ASCII"));
                    break;
                }
                Err(_) => {}
            }
        }
        Self::from_parts(
            header("authorization", "the Authorization header is not ASCII"),
            header(API_KEY_HEADER, "the x-api-key header is not ASCII"),
            query.and_then(|q| query_parameter_found(q, API_KEY_PARAMETER)),
            cookie,
            is_safe_method(method),
        )
    }

    /// From already separated pieces (the Lambda authorizer's event), most preferred first.
    pub fn from_parts(
        authorization: Found,
        api_key_header: Found,
        api_key_query: Found,
        api_key_cookie: Found,
        safe_method: bool,
    ) -> Credentials {
        if let Some(value) = authorization {
            let Ok(value) = value else {
                return Credentials::Malformed("the Authorization header is not ASCII");
            };
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
        for found in [api_key_header, api_key_query] {
            match found {
                Some(Ok(key)) => return Credentials::ApiKey(key.trim().to_string()),
                Some(Err(why)) => return Credentials::Malformed(why),
                None => {}
            }
        }
        match api_key_cookie {
            Some(_) if !safe_method => Credentials::Malformed(
                "an API key in a cookie is accepted only for GET and HEAD requests (a page on another site could send it)",
            ),
            Some(Ok(key)) => Credentials::ApiKey(key),
            Some(Err(why)) => Credentials::Malformed(why),
            None => Credentials::None,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `name`'s first value in a query string: decoded, or the reason it cannot be.
pub fn query_parameter_found(query: &str, name: &str) -> Found {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)?.as_str() == name)
            .then(|| percent_decode(value).ok_or("the api_key parameter is not valid percent-encoded UTF-8"))
    })
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
            Credentials::from_request("GET", &headers(&[("x-api-key", "slk_a")]), None),
            Credentials::ApiKey("slk_a".into())
        );
        assert_eq!(
            Credentials::from_request("GET", &headers(&[]), Some("limit=5&api_key=slk_%62")),
            Credentials::ApiKey("slk_b".into())
        );
        assert_eq!(
            Credentials::from_request("GET", &headers(&[("cookie", "theme=dark; api_key=slk_c")]), None),
            Credentials::ApiKey("slk_c".into())
        );
        assert_eq!(
            Credentials::from_request("GET", &headers(&[]), Some("limit=5")),
            Credentials::None
        );
    }

    #[test]
    fn bearer_wins_and_a_malformed_authorization_is_not_skipped() {
        let both = headers(&[("authorization", "Bearer abc"), ("x-api-key", "slk_a")]);
        assert_eq!(
            Credentials::from_request("GET", &both, None),
            Credentials::Bearer("abc".into())
        );
        let basic = headers(&[("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", "slk_a")]);
        assert_eq!(
            Credentials::from_request("GET", &basic, None),
            Credentials::Bearer(String::new())
        );
    }

    #[test]
    fn a_malformed_credential_anywhere_is_refused_not_skipped() {
        let mut unreadable = HeaderMap::new();
        unreadable.insert("x-api-key", axum::http::HeaderValue::from_bytes(b"slk_\xff").unwrap());
        unreadable.insert("cookie", "api_key=slk_good".parse().unwrap());
        assert!(matches!(
            Credentials::from_request("GET", &unreadable, None),
            Credentials::Malformed(_)
        ));
        let mut bad_authorization = HeaderMap::new();
        bad_authorization.insert(
            "authorization",
            axum::http::HeaderValue::from_bytes(b"Bearer \xfe").unwrap(),
        );
        bad_authorization.insert("x-api-key", "slk_good".parse().unwrap());
        assert!(matches!(
            Credentials::from_request("GET", &bad_authorization, None),
            Credentials::Malformed(_)
        ));
        assert!(matches!(
            Credentials::from_request("GET", &headers(&[("cookie", "api_key=slk_c")]), Some("api_key=%zz")),
            Credentials::Malformed(_)
        ));
    }

    #[test]
    fn a_cookie_credential_is_refused_on_requests_that_change_something() {
        let cookie = headers(&[("cookie", "api_key=slk_c")]);
        assert!(matches!(
            Credentials::from_request("POST", &cookie, None),
            Credentials::Malformed(_)
        ));
        assert_eq!(
            Credentials::from_request("HEAD", &cookie, None),
            Credentials::ApiKey("slk_c".into())
        );
        // A header credential is no browser's doing: fine on POST.
        assert_eq!(
            Credentials::from_request("POST", &headers(&[("x-api-key", "slk_a")]), None),
            Credentials::ApiKey("slk_a".into())
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
