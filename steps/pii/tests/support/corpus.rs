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
