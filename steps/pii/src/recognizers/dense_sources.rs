// The patterns searched with full (dense) DFAs. `build.rs` includes this file and compiles them
// to DFAs at build time, because building one at start-up costs a PII Lambda most of its init.
// Plain constants only: the build script compiles this file on its own.

/// Country code (+CC or 00CC), an optional area code in parentheses or a trunk-prefixed one
/// before a slash (German "030/1234567", "089 / 12 34 56"), then up to seven digit groups joined
/// by one space, dot or dash; an optional extension ("ext", "Ext.", "x", "#").
pub const PHONE_PATTERN: &str = r"(?x)
    (?: \+ [0-9]{1,3} [\ .-]? | (?-u:\b) 00 [1-9][0-9]{0,2} [\ .-]? )?
    (?: \( [0-9]{1,5} \) [\ .-]? | (?-u:\b) 0 [0-9]{1,4} \ ?/\ ? )?
    [0-9]{1,12} (?: [\ .-] [0-9]{1,12} ){0,6}
    (?: \ ? (?: (?i:ext)\.? | x | \# ) \ ? [0-9]{1,5} )?";

/// Digit groups joined by single spaces or dashes; every match begins with a digit.
pub const CARD_PATTERN: &str = r"(?-u:\b)[0-9]{2,6}(?:[ -]?[0-9]{2,7}){1,6}(?-u:\b)";
