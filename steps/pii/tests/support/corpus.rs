//! A deterministic generator of labeled text: sentences from templates with PII in many formats
//! per entity type, plus distractors (order numbers, prices, versions) that are not PII.

#![allow(dead_code)]

/// SplitMix64: small, seedable, reproducible across platforms.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// One labeled span: type and code-point offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub kind: &'static str,
    pub begin: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub text: String,
    pub labels: Vec<Label>,
}

const FIRST: &[&str] = &[
    "ana", "john", "li", "zoe", "omar", "maria", "kenji", "fatima", "lars", "priya",
];
const LAST: &[&str] = &[
    "smith", "garcia", "wang", "muller", "okafor", "rossi", "tanaka", "silva", "novak", "khan",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.co.uk",
    "example.io",
    "uni.example.edu",
    "example.de",
];

pub fn email(rng: &mut Rng) -> String {
    let (f, l, d) = (rng.pick(FIRST), rng.pick(LAST), rng.pick(DOMAINS));
    match rng.below(6) {
        0 => format!("{f}.{l}@{d}"),
        1 => format!("{f}{}@{d}", rng.digits(2)),
        2 => format!("{f}.{l}+news@{d}"),
        3 => format!("{}{l}@{d}", &f[..1]).to_uppercase(),
        4 => format!("{f}_{l}@{d}"),
        _ => format!("{l}-{f}@{d}"),
    }
}

pub fn phone(rng: &mut Rng) -> String {
    let area = rng.range(201, 989);
    let (a, b) = (rng.range(200, 999), rng.digits(4));
    match rng.below(14) {
        0 => format!("+1 ({area}) {a}-{b}"),
        1 => format!("{area}-{a}-{b}"),
        2 => format!("({area}) {a}-{b}"),
        3 => format!("{area}.{a}.{b}"),
        4 => format!("+44 20 {} {}", rng.digits(4), rng.digits(4)),
        5 => format!("+49 30 {}", rng.digits(7)),
        6 => format!(
            "+33 {} {} {} {} {}",
            rng.range(1, 9),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        ),
        7 => format!("0044 20 {} {}", rng.digits(4), rng.digits(4)),
        8 => format!("+81-3-{}-{}", rng.digits(4), rng.digits(4)),
        9 => format!("020 {} {}", rng.digits(4), rng.digits(4)),
        10 => format!("+91 {} {}", rng.range(70000, 99999), rng.digits(5)),
        11 => format!("+1-{area}-{a}-{b}"),
        12 => format!("+61 2 {} {}", rng.digits(4), rng.digits(4)),
        _ => format!("{area}{a}{b}"),
    }
}

fn luhn_complete(prefix: &str, len: usize, rng: &mut Rng) -> String {
    let mut digits = format!("{prefix}{}", rng.digits(len - prefix.len() - 1));
    for check in 0..10 {
        let candidate = format!("{digits}{check}");
        let sum: u32 = candidate
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
                } else {
                    d
                }
            })
            .sum();
        if sum.is_multiple_of(10) {
            digits = candidate;
            break;
        }
    }
    digits
}

pub fn card(rng: &mut Rng) -> String {
    let (prefix, len) = *rng.pick(&[
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("6011", 16),
        ("34", 15),
        ("37", 15),
        ("3530", 16),
    ]);
    let digits = luhn_complete(prefix, len, rng);
    let groups: Vec<&str> = if len == 15 {
        vec![&digits[..4], &digits[4..10], &digits[10..]]
    } else {
        vec![&digits[..4], &digits[4..8], &digits[8..12], &digits[12..]]
    };
    match rng.below(3) {
        0 => digits.clone(),
        1 => groups.join(" "),
        _ => groups.join("-"),
    }
}

pub fn ssn(rng: &mut Rng) -> String {
    let area = loop {
        let a = rng.range(1, 899);
        if a != 666 {
            break a;
        }
    };
    let (group, serial) = (rng.range(1, 99), rng.range(1, 9999));
    if rng.below(4) == 0 {
        format!("{area:03} {group:02} {serial:04}")
    } else {
        format!("{area:03}-{group:02}-{serial:04}")
    }
}

pub fn iban(rng: &mut Rng) -> String {
    let (country, len) = *rng.pick(&[
        ("DE", 22),
        ("GB", 22),
        ("FR", 27),
        ("ES", 24),
        ("NL", 18),
        ("IT", 27),
        ("CH", 21),
        ("BE", 16),
    ]);
    let bban: String = if country == "GB" || country == "NL" {
        let bank: String = (0..4).map(|_| char::from(b'A' + rng.below(26) as u8)).collect();
        format!("{bank}{}", rng.digits(len - 8))
    } else {
        rng.digits(len - 4)
    };
    let numeric: String = format!("{bban}{country}00")
        .chars()
        .map(|c| c.to_digit(36).unwrap().to_string())
        .collect();
    let remainder = numeric
        .bytes()
        .fold(0u64, |acc, b| (acc * 10 + u64::from(b - b'0')) % 97);
    let compact = format!("{country}{:02}{bban}", 98 - remainder);
    if rng.below(2) == 0 {
        compact
    } else {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn ip(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 | 1 => format!(
            "{}.{}.{}.{}",
            rng.range(1, 223),
            rng.range(0, 255),
            rng.range(0, 255),
            rng.range(1, 254)
        ),
        2 => (0..8)
            .map(|_| format!("{:x}", rng.range(0, 0xffff)))
            .collect::<Vec<_>>()
            .join(":"),
        _ => format!("2001:db8::{:x}:{:x}", rng.range(1, 0xffff), rng.range(1, 0xffff)),
    }
}

pub fn mac(rng: &mut Rng) -> String {
    let bytes: Vec<String> = (0..6).map(|_| format!("{:02X}", rng.range(0, 255))).collect();
    if rng.below(2) == 0 {
        bytes.join(":")
    } else {
        bytes.join("-").to_lowercase()
    }
}

pub fn url(rng: &mut Rng) -> String {
    let d = rng.pick(DOMAINS);
    match rng.below(3) {
        0 => format!("https://{d}/account/{}", rng.digits(5)),
        1 => format!("http://www.{d}/?ref={}", rng.digits(3)),
        _ => format!("www.{d}/profile"),
    }
}

pub fn date(rng: &mut Rng) -> String {
    let (y, m, d) = (rng.range(1950, 2030), rng.range(1, 12), rng.range(1, 28));
    const MONTHS: &[&str] = &[
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    match rng.below(5) {
        0 => format!("{y}-{m:02}-{d:02}"),
        1 => format!("{m:02}/{d:02}/{y}"),
        2 => format!("{d}.{m}.{y}"),
        3 => format!("{} {d}, {y}", MONTHS[m as usize - 1]),
        _ => format!("{d} {} {y}", MONTHS[m as usize - 1]),
    }
}

pub fn aws_key(rng: &mut Rng) -> String {
    let tail: String = (0..16)
        .map(|_| *rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") as char)
        .collect();
    format!("AKIA{tail}")
}

type Generator = fn(&mut Rng) -> String;

pub const TYPES: &[(&str, Generator)] = &[
    ("EMAIL", email),
    ("PHONE", phone),
    ("CREDIT_DEBIT_NUMBER", card),
    ("SSN", ssn),
    ("INTERNATIONAL_BANK_ACCOUNT_NUMBER", iban),
    ("IP_ADDRESS", ip),
    ("MAC_ADDRESS", mac),
    ("URL", url),
    ("DATE_TIME", date),
    ("AWS_ACCESS_KEY", aws_key),
];

const TEMPLATES: &[&str] = &[
    "Please contact {} for details.",
    "{}",
    "Customer wrote: \"my details are {} thanks\"",
    "Reach me at {} or leave a note.",
    "Note from Zoë (café owner): {} — urgent",
    "顧客の情報 {} を確認してください",
    "Update 😀👍🏽 value={}; status ok",
    "ID on file: {}, verified by agent 42",
    "Record {}.",
    "Ticket #48213 mentions {} in the body",
];

const DISTRACTORS: &[&str] = &[
    "Order 48213 shipped with 3 items for $1,299.99",
    "Version 2.4.1 fixed 17 bugs in 12 files",
    "Room 101, floor 7, building C",
    "Invoice total 4500 EUR due in 30 days",
    "Scored 98.6 out of 100 in 2 rounds",
    "Batch 2023 produced 15000 units",
    "Ref ABC-12345-XY approved",
    "The ratio was 3:2 and then 16:9",
];

/// `n` samples: mostly one entity in a template, some two, some none (distractors).
pub fn generate(n: usize, seed: u64) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        if i % 10 == 9 {
            samples.push(Sample {
                text: rng.pick(DISTRACTORS).to_string(),
                labels: vec![],
            });
            continue;
        }
        let (kind, generate) = TYPES[i % TYPES.len()];
        let template = *rng.pick(TEMPLATES);
        let value = generate(&mut rng);
        let (before, after) = template.split_once("{}").unwrap();
        let mut text = before.to_string();
        let begin = text.chars().count();
        text.push_str(&value);
        let mut labels = vec![Label {
            kind,
            begin,
            end: begin + value.chars().count(),
        }];
        text.push_str(after);
        if i % 7 == 0 {
            let (kind2, generate2) = TYPES[(i / 7) % TYPES.len()];
            let value2 = generate2(&mut rng);
            text.push_str(" Also: ");
            let begin2 = text.chars().count();
            text.push_str(&value2);
            labels.push(Label {
                kind: kind2,
                begin: begin2,
                end: begin2 + value2.chars().count(),
            });
        }
        samples.push(Sample { text, labels });
    }
    samples
}

/// Free-text cells of a CSV (no labels), for cost and speed measurements.
pub fn free_text_cell(rng: &mut Rng) -> String {
    let (_, generate) = TYPES[rng.below(TYPES.len())];
    let template = *rng.pick(TEMPLATES);
    if rng.below(3) == 0 {
        return rng.pick(DISTRACTORS).to_string();
    }
    template.replacen("{}", &generate(rng), 1)
}

/// The benchmark's CSV body: an id, an amount and 3 free-text columns per row.
pub fn csv_rows(rows: usize, seed: u64) -> Vec<Vec<String>> {
    let mut rng = Rng::new(seed);
    (0..rows)
        .map(|i| {
            vec![
                i.to_string(),
                format!("{}.{:02}", rng.range(1, 9999), rng.range(0, 99)),
                free_text_cell(&mut rng),
                free_text_cell(&mut rng),
                free_text_cell(&mut rng),
            ]
        })
        .collect()
}

/// The benchmark's policy over [`csv_rows`]: emails tokenized, phones redacted, the rest masked.
pub fn bench_cleaner() -> sluice_pii::CellCleaner {
    let policy =
        sluice_pii::PiiPolicy::from_toml("[entities]\nEMAIL = \"tokenize\"\nPHONE = \"redact\"", "bench").unwrap();
    sluice_pii::CellCleaner::new(policy, Some(sluice_pii::Tokenizer::new(&[3; 32]))).unwrap()
}

/// Detects and cleans every cell of [`csv_rows`]; returns the bytes of cleaned text and the
/// number of values sent to the vault.
pub fn detect_and_mask_rows(
    rows: &[Vec<String>],
    detector: &sluice_pii::BuiltinDetector,
    cleaner: &sluice_pii::CellCleaner,
) -> (usize, usize) {
    let mut vault = Vec::new();
    let mut out = 0usize;
    for row in rows {
        for (column, text) in row.iter().enumerate() {
            let entities = detector.detect_cell(&sluice_pii::Cell::new(text));
            let cleaned = cleaner.clean(["id", "amount", "a", "b", "c"][column], text, &entities, &mut vault);
            out += cleaned.text.len();
        }
    }
    (out, vault.len())
}

// A second corpus, for a held-out measurement: other sentence templates, German, French, UK and
// US formats, RFC 2822 dates, and distractors that look like PII but are not (placeholder SSNs,
// card-like numbers that fail the Luhn check). Nothing above is shared but the RNG, so tuning
// the recognizers on the first corpus says nothing about this one.

/// A value and the words that must stand right before it (a phone word, "SSN"), which belong to
/// the sentence, not to the label.
pub struct Fresh {
    pub lead: String,
    pub value: String,
}

fn plain(value: String) -> Fresh {
    Fresh {
        lead: String::new(),
        value,
    }
}

fn led(lead: &str, value: String) -> Fresh {
    Fresh {
        lead: lead.to_string(),
        value,
    }
}

const FRESH_FIRST: &[&str] = &[
    "jean-luc", "ines", "bjorn", "chloe", "dmitri", "aoife", "lukas", "amelie",
];
const FRESH_LAST: &[&str] = &[
    "dupont", "mueller", "obrien", "lefevre", "schmidt", "moreau", "walsh", "weber",
];
const FRESH_DOMAINS: &[&str] = &[
    "beispiel.de",
    "exemple.fr",
    "example.net",
    "post.example.at",
    "mail.example.ie",
];

fn fresh_email(rng: &mut Rng) -> Fresh {
    let (f, l, d) = (rng.pick(FRESH_FIRST), rng.pick(FRESH_LAST), rng.pick(FRESH_DOMAINS));
    plain(match rng.below(5) {
        0 => format!("{}.{l}@{d}", &f[..1]),
        1 => format!("{l}.{f}{}@{d}", rng.digits(3)),
        2 => format!("{f}%{l}@{d}"),
        3 => format!("{f}.{l}@{d}").to_uppercase(),
        _ => format!("{l}+rechnung@{d}"),
    })
}

const GERMAN_PHONE_WORDS: &[&str] = &["Tel. ", "Telefon ", "Tel.: ", "Mobil: "];
const FRENCH_PHONE_WORDS: &[&str] = &["phone: ", "Téléphone : ", "tél. "];
const SSN_WORDS: &[&str] = &["SSN ", "ssn: ", "Social Security No. "];
const SECRET_WORDS: &[&str] = &["aws_secret_access_key = ", "SecretAccessKey: "];

fn fresh_phone(rng: &mut Rng) -> Fresh {
    let pairs = |rng: &mut Rng, n: usize, sep: &str| (0..n).map(|_| rng.digits(2)).collect::<Vec<_>>().join(sep);
    let german_area = *rng.pick(&["030", "089", "040", "069", "0221", "0711"]);
    let french_lead = *rng.pick(&["01", "02", "04", "05", "06", "07", "09"]);
    let us_area = rng.range(201, 989);
    let us_exchange = rng.range(200, 999);
    match rng.below(20) {
        // Germany
        0 => plain(format!("{german_area}/{}", rng.digits(7))),
        1 => plain(format!(
            "{german_area} / {} {} {}",
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        )),
        2 => plain(format!("{german_area}.{}.{}", rng.digits(4), rng.digits(4))),
        3 => plain(format!("+49 {} {}", &german_area[1..], rng.digits(7))),
        4 => plain(format!("01{} {}", rng.range(51, 79), rng.digits(7))),
        5 => led(
            rng.pick::<&str>(GERMAN_PHONE_WORDS),
            format!("0{}{}", rng.range(1, 9), rng.digits(8)),
        ),
        // France
        6 => plain(format!("{french_lead}.{}", pairs(rng, 4, "."))),
        7 => plain(format!("{french_lead} {}", pairs(rng, 4, " "))),
        8 => plain(format!("{french_lead}-{}", pairs(rng, 4, "-"))),
        9 => plain(format!("+33 {} {}", rng.range(1, 9), pairs(rng, 4, " "))),
        10 => led(
            rng.pick::<&str>(FRENCH_PHONE_WORDS),
            format!("0{}{}", rng.range(1, 9), rng.digits(8)),
        ),
        // United Kingdom
        11 => plain(format!("020 {} {}", rng.digits(4), rng.digits(4))),
        12 => plain(format!("07{} {}", rng.digits(3), rng.digits(6))),
        13 => plain(format!("+44 7{} {}", rng.digits(3), rng.digits(6))),
        14 => plain(format!("+44 (0)161 {} {}", rng.digits(3), rng.digits(4))),
        // United States
        15 => plain(format!(
            "+1 {us_area} {us_exchange} {} Ext. {}",
            rng.digits(4),
            rng.range(1, 999)
        )),
        16 => plain(format!(
            "({us_area}) {us_exchange}-{} ext. {}",
            rng.digits(4),
            rng.range(1, 99)
        )),
        17 => plain(format!("{us_area}.{us_exchange}.{}", rng.digits(4))),
        18 => plain(format!("1-{us_area}-{us_exchange}-{}", rng.digits(4))),
        _ => plain(format!(
            "{us_area}-{us_exchange}-{} x{}",
            rng.digits(4),
            rng.range(10, 9999)
        )),
    }
}

fn luhn_check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // The check digit will sit to the right, so the body's last digit is doubled.
            if i % 2 == 0 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// A 15- or 16-digit number in a card layout whose last digit is right (`valid`) or wrong.
fn card_digits(rng: &mut Rng, valid: bool) -> (String, usize) {
    let (prefix, len) = *rng.pick(&[
        ("4", 16),
        ("53", 16),
        ("2720", 16),
        ("6011", 16),
        ("37", 15),
        ("3566", 16),
    ]);
    let body = format!("{prefix}{}", rng.digits(len - prefix.len() - 1));
    let check = luhn_check_digit(&body);
    let check = if valid {
        check
    } else {
        (check + rng.range(1, 9) as u8) % 10
    };
    (format!("{body}{check}"), len)
}

fn card_layout(rng: &mut Rng, digits: &str, len: usize) -> String {
    let groups: Vec<&str> = if len == 15 {
        vec![&digits[..4], &digits[4..10], &digits[10..]]
    } else {
        vec![&digits[..4], &digits[4..8], &digits[8..12], &digits[12..]]
    };
    match rng.below(3) {
        0 => digits.to_string(),
        1 => groups.join(" "),
        _ => groups.join("-"),
    }
}

fn fresh_card(rng: &mut Rng) -> Fresh {
    let (digits, len) = card_digits(rng, true);
    plain(card_layout(rng, &digits, len))
}

fn fresh_ssn(rng: &mut Rng) -> Fresh {
    let (area, group, serial) = loop {
        let (a, g, s) = (rng.range(1, 899), rng.range(1, 99), rng.range(1, 9999));
        let digits = format!("{a:03}{g:02}{s:04}");
        if a != 666 && !matches!(digits.as_str(), "078051120" | "219099999" | "123456789") {
            break (a, g, s);
        }
    };
    match rng.below(3) {
        0 => plain(format!("{area:03}-{group:02}-{serial:04}")),
        1 => plain(format!("{area:03} {group:02} {serial:04}")),
        _ => led(rng.pick::<&str>(SSN_WORDS), format!("{area:03}{group:02}{serial:04}")),
    }
}

fn fresh_iban(rng: &mut Rng) -> Fresh {
    let (country, len, letters) = *rng.pick(&[
        ("AT", 20, 0),
        ("PL", 28, 0),
        ("PT", 25, 0),
        ("SE", 24, 0),
        ("DK", 18, 0),
        ("NO", 15, 0),
        ("IE", 22, 4),
        ("LU", 20, 0),
    ]);
    let bank: String = (0..letters).map(|_| char::from(b'A' + rng.below(26) as u8)).collect();
    let bban = format!("{bank}{}", rng.digits(len - 4 - letters));
    let numeric: String = format!("{bban}{country}00")
        .chars()
        .filter_map(|c| c.to_digit(36))
        .map(|d| d.to_string())
        .collect();
    let remainder = numeric
        .bytes()
        .fold(0u64, |acc, b| (acc * 10 + u64::from(b - b'0')) % 97);
    let compact = format!("{country}{:02}{bban}", 98 - remainder);
    plain(if rng.below(2) == 0 {
        compact
    } else {
        let chars: Vec<char> = compact.chars().collect();
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn fresh_ip(rng: &mut Rng) -> Fresh {
    plain(match rng.below(4) {
        0 => format!("10.{}.{}.{}", rng.range(0, 255), rng.range(0, 255), rng.range(1, 254)),
        1 => format!("172.{}.{}.{}", rng.range(16, 31), rng.range(0, 255), rng.range(1, 254)),
        2 => format!(
            "fe80::{:x}:{:x}:{:x}",
            rng.range(1, 0xffff),
            rng.range(1, 0xffff),
            rng.range(1, 0xffff)
        ),
        _ => format!("2a01:4f8:{:x}::{:x}", rng.range(1, 0xffff), rng.range(1, 0xffff)),
    })
}

fn fresh_mac(rng: &mut Rng) -> Fresh {
    let bytes: Vec<String> = (0..6).map(|_| format!("{:02x}", rng.range(0, 255))).collect();
    plain(match rng.below(3) {
        0 => bytes.join(":"),
        1 => bytes.join("-").to_uppercase(),
        _ => format!(
            "{}{}.{}{}.{}{}",
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]
        ),
    })
}

fn fresh_url(rng: &mut Rng) -> Fresh {
    let d = rng.pick(FRESH_DOMAINS);
    plain(match rng.below(4) {
        0 => format!("https://{d}/kontakt?id={}", rng.digits(4)),
        1 => format!("ftp://files.{d}/pub/{}.zip", rng.digits(3)),
        2 => format!("https://www.{d}/de/konto/{}#top", rng.digits(2)),
        _ => format!("www.{d}/contact"),
    })
}

const FRESH_WEEKDAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FRESH_MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn fresh_date(rng: &mut Rng) -> Fresh {
    let (y, m, d) = (rng.range(1960, 2035), rng.range(1, 12) as usize, rng.range(1, 28));
    let (hh, mm, ss) = (rng.range(0, 23), rng.range(0, 59), rng.range(0, 59));
    let long = FRESH_MONTHS[m - 1];
    let short = &long[..3];
    let weekday = rng.pick(FRESH_WEEKDAYS);
    let zone = match rng.below(4) {
        0 => format!("+{:02}00", rng.range(0, 12)),
        1 => format!("-{:02}00", rng.range(1, 10)),
        2 => "GMT".to_string(),
        _ => "UT".to_string(),
    };
    plain(match rng.below(9) {
        0 => format!("{weekday}, {d} {short} {y} {hh:02}:{mm:02}:{ss:02} {zone}"),
        1 => format!("{weekday}, {d:02} {short} {y} {hh:02}:{mm:02} {zone}"),
        2 => format!("{d} {short} {y} {hh:02}:{mm:02} {zone}"),
        3 => format!("{d:02}-{short}-{y}"),
        4 => format!("{d}-{long}-{y}"),
        5 => format!("{d:02}.{m:02}.{y}"),
        6 => format!("{d}.{m}.{y} {hh:02}:{mm:02}"),
        7 => format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        _ => format!("{short} {d}, {y}"),
    })
}

fn fresh_aws_key(rng: &mut Rng) -> Fresh {
    let tail: String = (0..16)
        .map(|_| *rng.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") as char)
        .collect();
    plain(format!("{}{tail}", rng.pick(&["AKIA", "ASIA"])))
}

fn fresh_aws_secret(rng: &mut Rng) -> Fresh {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // Upper, lower and a digit first: a real key mixes all three.
    let mut key = format!("K{}7", char::from(b'a' + rng.below(26) as u8));
    key.extend((0..37).map(|_| char::from(*rng.pick(ALPHABET))));
    led(rng.pick::<&str>(SECRET_WORDS), key)
}

type FreshGenerator = fn(&mut Rng) -> Fresh;

pub const FRESH_TYPES: &[(&str, FreshGenerator)] = &[
    ("EMAIL", fresh_email),
    ("PHONE", fresh_phone),
    ("CREDIT_DEBIT_NUMBER", fresh_card),
    ("SSN", fresh_ssn),
    ("INTERNATIONAL_BANK_ACCOUNT_NUMBER", fresh_iban),
    ("IP_ADDRESS", fresh_ip),
    ("MAC_ADDRESS", fresh_mac),
    ("URL", fresh_url),
    ("DATE_TIME", fresh_date),
    ("AWS_ACCESS_KEY", fresh_aws_key),
    ("AWS_SECRET_KEY", fresh_aws_secret),
];

const FRESH_TEMPLATES: &[&str] = &[
    "Bitte rufen Sie mich unter {} zurück.",
    "Merci de confirmer {} avant vendredi.",
    "Kundennotiz: {} (geprüft)",
    "[{}]",
    "Forwarded — original field «{}» kept as is",
    "Log 07: user supplied {} at checkout",
    "Angaben laut Formular: {}; Rückfrage offen",
    "{} — saisi par le client",
    "Cheers, see {}!",
    "Row 3, column C: {}",
];

/// What a placeholder SSN looks like in a sentence; none of them is ever a real number.
const PLACEHOLDER_SSNS: &[&str] = &[
    "078-05-1120",
    "219-09-9999",
    "123-45-6789",
    "078 05 1120",
    "219099999",
    "123456789",
];

const FRESH_DISTRACTORS: &[&str] = &[
    "Artikel 4711-0815 ist ausverkauft",
    "Version 3.10.2 behebt 14 Fehler",
    "Seite 12 von 30, Kapitel 3.4",
    "Betrag 1.234,56 EUR fällig in 14 Tagen",
    "Bildformat 4:3 statt 16:9",
    "PLZ 10115, Hausnummer 12b",
    "Lot 88-231 of 500 shipped",
    "Commande n° 20261 expédiée, 3 colis",
];

/// Which kind of non-PII a distractor sample holds, so a test can count hits on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoy {
    None,
    PlaceholderSsn,
    FailedCard,
}

#[derive(Debug, Clone)]
pub struct FreshSample {
    pub sample: Sample,
    pub decoy: Decoy,
}

/// A distractor sample: a placeholder SSN, a card-like number failing Luhn, or other numbers.
fn fresh_distractor(rng: &mut Rng) -> FreshSample {
    let (text, decoy) = match rng.below(3) {
        0 => {
            let repeated = rng.range(1, 9).to_string();
            let number = match rng.below(4) {
                0 => format!("{0}{0}{0}-{0}{0}-{0}{0}{0}{0}", repeated),
                1 => repeated.repeat(9),
                _ => rng.pick(PLACEHOLDER_SSNS).to_string(),
            };
            let lead = rng.pick(&["SSN ", "ssn: ", "Social Security ", "Beispiel-SSN "]);
            (format!("{lead}{number} (Muster)"), Decoy::PlaceholderSsn)
        }
        1 => {
            let (digits, len) = card_digits(rng, false);
            let number = card_layout(rng, &digits, len);
            let template = rng.pick(&["Karte {} abgelehnt", "card {} declined", "Carte n° {} refusée", "{}"]);
            (template.replacen("{}", &number, 1), Decoy::FailedCard)
        }
        _ => (rng.pick(FRESH_DISTRACTORS).to_string(), Decoy::None),
    };
    FreshSample {
        sample: Sample { text, labels: vec![] },
        decoy,
    }
}

fn push_fresh(text: &mut String, labels: &mut Vec<Label>, kind: &'static str, fresh: Fresh) {
    text.push_str(&fresh.lead);
    let begin = text.chars().count();
    text.push_str(&fresh.value);
    labels.push(Label {
        kind,
        begin,
        end: begin + fresh.value.chars().count(),
    });
}

/// `n` samples of the held-out corpus: one entity per template, some with a second entity, and
/// every eighth a distractor.
pub fn generate_fresh(n: usize, seed: u64) -> Vec<FreshSample> {
    let mut rng = Rng::new(seed);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        if i % 8 == 7 {
            samples.push(fresh_distractor(&mut rng));
            continue;
        }
        let (kind, generate) = FRESH_TYPES[i % FRESH_TYPES.len()];
        let template = *rng.pick(FRESH_TEMPLATES);
        let (before, after) = template.split_once("{}").unwrap_or((template, ""));
        let mut text = before.to_string();
        let mut labels = Vec::new();
        push_fresh(&mut text, &mut labels, kind, generate(&mut rng));
        text.push_str(after);
        if i % 5 == 0 {
            let (kind2, generate2) = FRESH_TYPES[(i / 5) % FRESH_TYPES.len()];
            text.push_str(" Sonst: ");
            push_fresh(&mut text, &mut labels, kind2, generate2(&mut rng));
        }
        samples.push(FreshSample {
            sample: Sample { text, labels },
            decoy: Decoy::None,
        });
    }
    samples
}
