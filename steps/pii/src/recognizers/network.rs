//! IP_ADDRESS (v4 and v6, validated by the standard library's parsers) and MAC_ADDRESS.

use std::net::{Ipv4Addr, Ipv6Addr};

use regex::Regex;

use super::{Candidate, TextShape, char_after, char_before, pattern};
use crate::entity::EntityType;

pub(super) struct NetworkRecognizers {
    ipv4: Regex,
    ipv6: Regex,
    mac: Regex,
}

impl NetworkRecognizers {
    pub fn new() -> Self {
        NetworkRecognizers {
            ipv4: pattern(r"(?-u:\b)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?-u:\b)"),
            // Hex groups and colons, optionally ending in a dotted IPv4 part; Ipv6Addr decides.
            ipv6: pattern(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}"),
            mac: pattern(
                r"(?-u:\b)(?:[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?-u:\b)",
            ),
        }
    }

    pub fn find(&self, text: &str, shape: &TextShape, out: &mut Vec<Candidate>) {
        if shape.dotted_run_dots >= 3 {
            self.find_ipv4(text, out);
        }
        if shape.colons >= 2 && has_hex_colon_pair(text.as_bytes()) {
            self.find_ipv6(text, out);
        }
        if (shape.colons >= 5 || shape.dashes >= 5 || shape.dots >= 2) && has_mac_step(text.as_bytes()) {
            self.find_macs(text, out);
        }
    }

    fn find_ipv4(&self, text: &str, out: &mut Vec<Candidate>) {
        for found in self.ipv4.find_iter(text) {
            let (start, end) = (found.start(), found.end());
            // Part of a longer dotted run (a version "1.2.3.4.5", an OID) is not an address.
            let dotted_before =
                char_before(text, start) == Some('.') && text[..start - 1].ends_with(|c: char| c.is_ascii_digit());
            let dotted_after =
                char_after(text, end) == Some('.') && text[end + 1..].starts_with(|c: char| c.is_ascii_digit());
            if dotted_before || dotted_after || found.as_str().parse::<Ipv4Addr>().is_err() {
                continue;
            }
            out.push(Candidate {
                kind: EntityType::IpAddress,
                start,
                end,
                score: 0.95,
            });
        }
    }

    fn find_ipv6(&self, text: &str, out: &mut Vec<Candidate>) {
        for found in self.ipv6.find_iter(text) {
            let (start, end) = (found.start(), found.end());
            let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == ':' || c == '_');
            if glued(char_before(text, start)) || glued(char_after(text, end)) {
                continue;
            }
            let candidate = found.as_str();
            if candidate.matches(':').count() < 2 || candidate.parse::<Ipv6Addr>().is_err() {
                continue;
            }
            out.push(Candidate {
                kind: EntityType::IpAddress,
                start,
                end,
                score: 0.95,
            });
        }
    }

    fn find_macs(&self, text: &str, out: &mut Vec<Candidate>) {
        for found in self.mac.find_iter(text) {
            let (start, end) = (found.start(), found.end());
            if char_before(text, start).is_some_and(|c| matches!(c, ':' | '-' | '.'))
                || char_after(text, end).is_some_and(|c| matches!(c, ':' | '-'))
            {
                continue;
            }
            // A run of decimal digits only ("12-34-56-78-90-12") is more likely a reference number.
            let all_decimal = found
                .as_str()
                .chars()
                .all(|c| c.is_ascii_digit() || !c.is_alphanumeric());
            out.push(Candidate {
                kind: EntityType::MacAddress,
                start,
                end,
                score: if all_decimal { 0.6 } else { 0.9 },
            });
        }
    }
}

/// Whether two colons sit at most four hex digits apart (every IPv6 candidate has such a pair).
fn has_hex_colon_pair(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(at, &byte)| {
        byte == b':'
            && bytes[at + 1..]
                .iter()
                .take(5)
                .position(|&next| !next.is_ascii_hexdigit())
                .is_some_and(|gap| bytes[at + 1 + gap] == b':')
    })
}

/// Whether two hex digits sit between two equal colons or dashes, or four between two dots
/// (every MAC address form has such a step).
fn has_mac_step(bytes: &[u8]) -> bool {
    let hex_between = |from: usize, to: usize| bytes[from..to].iter().all(u8::is_ascii_hexdigit);
    bytes.iter().enumerate().any(|(at, &byte)| match byte {
        b':' | b'-' => bytes.get(at + 3) == Some(&byte) && hex_between(at + 1, at + 3),
        b'.' => bytes.get(at + 5) == Some(&b'.') && hex_between(at + 1, at + 5),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use crate::recognizers::test_support::found_of;

    #[test]
    fn ipv4_addresses_are_validated_octet_by_octet() {
        assert_eq!(found_of("from 192.168.1.20, then", "IP_ADDRESS"), ["192.168.1.20"]);
        assert!(found_of("256.1.1.1", "IP_ADDRESS").is_empty());
        assert!(found_of("version 1.2.3.4.5", "IP_ADDRESS").is_empty());
    }

    #[test]
    fn ipv6_addresses_in_full_compressed_and_mapped_forms_are_found() {
        for ip in [
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8::8a2e:370:7334",
            "::1",
            "fe80::1",
            "::ffff:192.0.2.128",
        ] {
            assert_eq!(found_of(&format!("addr {ip} seen"), "IP_ADDRESS"), [ip], "{ip}");
        }
        assert!(found_of("at 10:30:45 today", "IP_ADDRESS").is_empty());
    }

    #[test]
    fn mac_addresses_in_colon_dash_and_cisco_forms_are_found() {
        for mac in ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e"] {
            assert_eq!(found_of(&format!("nic {mac} up"), "MAC_ADDRESS"), [mac], "{mac}");
        }
        assert!(found_of("00:1A:2B:3C:4D", "MAC_ADDRESS").is_empty());
    }
}
