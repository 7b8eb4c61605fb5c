//! A developer entry point to the engine's commands (the real CLI is `sluice`):
//! `sluice-asl validate FILE...`, `sluice-asl exec DEFINITION INPUT [MOCK_CONFIG TEST_CASE]`,
//! `sluice-asl conformance FILE [CATEGORY]`.

use std::path::Path;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout();
    let code = match args.first().map(String::as_str) {
        Some("validate") if args.len() > 1 => {
            let paths: Vec<&Path> = args[1..].iter().map(Path::new).collect();
            sluice_statemachine::cli::validate_files(&paths, &mut out)
        }
        Some("exec") if args.len() == 3 || args.len() == 5 => {
            sluice_statemachine::cli::exec(
                Path::new(&args[1]),
                &args[2],
                args.get(3).map(Path::new),
                args.get(4).map(String::as_str),
                None,
                &mut out,
            )
            .await
        }
        Some("conformance") if args.len() >= 2 => {
            let (_, failed) = sluice_statemachine::cli::conformance(
                Path::new(&args[1]),
                args.get(2).map(String::as_str),
                None,
                &mut out,
            )
            .await;
            i32::from(failed > 0)
        }
        _ => {
            eprintln!(
                "usage: sluice-asl validate FILE... | exec DEFINITION INPUT [MOCK_CONFIG TEST_CASE] | conformance FILE [CATEGORY]"
            );
            2
        }
    };
    std::process::exit(code);
}
