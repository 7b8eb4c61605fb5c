//! Text as the SVG needs it: XML escaping and a width estimate good enough to size boxes
//! without a font library.

/// Escapes text for an XML attribute or element.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The approximate width of `text` in a sans-serif font of `size` pixels.
pub(crate) fn width(text: &str, size: f64) -> f64 {
    let ems: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | 'I' | ' ' => 0.30,
            'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '/' | '-' => 0.40,
            'm' | 'w' | 'M' | 'W' | '@' => 0.88,
            'A'..='Z' => 0.68,
            '0'..='9' | '$' | '_' | '=' | '<' | '>' | '"' => 0.58,
            c if c.is_ascii() => 0.54,
            // Wide scripts and symbols: err on the roomy side.
            _ => 0.9,
        })
        .sum();
    ems * size
}

/// `text` cut to about `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_markup_and_control_characters() {
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}");
    }

    #[test]
    fn wider_text_measures_wider() {
        assert!(width("WWWW", 13.0) > width("iiii", 13.0));
        assert_eq!(width("", 13.0), 0.0);
    }

    #[test]
    fn truncate_keeps_short_text_and_marks_cut_text() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a longer label", 6), "a lon…");
    }
}
