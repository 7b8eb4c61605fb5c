//! Compiles the dense-DFA patterns (`src/recognizers/dense_sources.rs`) once, at build time, and
//! writes each forward and reverse DFA to `OUT_DIR` as little-endian bytes that the crate embeds
//! and deserializes without rebuilding. Every Lambda target Sluice builds for is little-endian;
//! on any other the embedded bytes are refused at start-up by `DFA::from_bytes`, loudly.

mod dense_sources {
    include!("src/recognizers/dense_sources.rs");
}

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=src/recognizers/dense_sources.rs");
    println!("cargo::rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // The file stems `DensePattern::phone` and `DensePattern::card` embed.
    let patterns = [
        ("phone", dense_sources::PHONE_PATTERN),
        ("card", dense_sources::CARD_PATTERN),
    ];
    for (stem, source) in patterns {
        let regex = regex_automata::dfa::regex::Regex::new(source)?;
        let (forward, _) = regex.forward().to_bytes_little_endian();
        let (reverse, _) = regex.reverse().to_bytes_little_endian();
        std::fs::write(out_dir.join(format!("{stem}.forward.dfa")), forward)?;
        std::fs::write(out_dir.join(format!("{stem}.reverse.dfa")), reverse)?;
    }
    Ok(())
}
