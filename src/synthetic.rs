//! Synthetic mailboxes for the end-to-end tests and the pipeline benchmark: `.eml` files with
//! CSV attachments whose rows are unique across the mailbox. No PII: the rows are ids, SKUs and
//! amounts, so two separate runs over one mailbox produce byte-identical records.

use std::io::Write;
use std::path::Path;

/// The shape of a generated mailbox.
#[derive(Debug, Clone, Copy)]
pub struct MailboxShape {
    pub messages: usize,
    /// CSV attachments per message (each in its own dataset: `sales`, `stock`, `returns`, ...).
    pub attachments: usize,
    pub rows: usize,
}

/// The datasets the attachments land in, in attachment order.
pub const DATASETS: [&str; 4] = ["sales", "stock", "returns", "prices"];

/// The `[datasets.*]` configuration the generated files need (their key column).
pub fn datasets_config() -> String {
    DATASETS
        .iter()
        .map(|d| format!("[datasets.{d}]\nkey_columns = [\"id\"]\n"))
        .collect()
}

/// Writes `shape.messages` messages into `dir` (created if missing).
pub fn write_mailbox(dir: &Path, shape: MailboxShape) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for message in 0..shape.messages {
        let path = dir.join(format!("message-{message:06}.eml"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        write!(
            out,
            "From: Exports <exports@example.com>\r\nTo: Data <data@example.org>\r\nSubject: Export {message}\r\n\
             Date: Mon, 03 Mar 2025 09:00:00 +0000\r\nMessage-ID: <export-{message:06}@sluice.example>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{message}\"\r\n\r\n\
             --b{message}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\nToday's export.\r\n"
        )?;
        for (attachment, dataset) in DATASETS.iter().cycle().take(shape.attachments).enumerate() {
            write!(
                out,
                "--b{message}\r\nContent-Type: text/csv; name=\"{dataset}.csv\"\r\n\
                 Content-Disposition: attachment; filename=\"{dataset}.csv\"\r\n\
                 Content-Transfer-Encoding: 7bit\r\n\r\nid,sku,quantity,amount\r\n"
            )?;
            for row in 0..shape.rows {
                let n = (message * 31 + row * 7 + attachment) % 997;
                writeln!(
                    out,
                    "m{message:06}-{attachment}-{row},SKU-{n:04},{},{}.{:02}\r",
                    n % 50,
                    n,
                    row
                )?;
            }
        }
        write!(out, "--b{message}--\r\n")?;
        out.flush()?;
    }
    Ok(())
}
