//! Reading a secret for the CLI: from a terminal without echo, or from piped stdin. Secrets are
//! never command-line arguments (they would land in shell history and `ps`).

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context};
use keyward_core::secret::ProviderSecret;
use zeroize::Zeroizing;

/// Largest secret read from stdin.
const MAX_SECRET_BYTES: u64 = 16 * 1024;

pub(crate) fn read_secret(prompt: &str) -> anyhow::Result<ProviderSecret> {
    let stdin = std::io::stdin();
    let text = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password(prompt)
                .context("cannot read the secret from the terminal")?,
        )
    } else {
        let mut bytes = Zeroizing::new(Vec::new());
        stdin
            .lock()
            .take(MAX_SECRET_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("cannot read the secret from stdin")?;
        if bytes.len() as u64 > MAX_SECRET_BYTES {
            bail!("the secret on stdin is longer than {MAX_SECRET_BYTES} bytes; pipe only the key");
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| anyhow::anyhow!("the secret on stdin is not UTF-8 text"))?;
        Zeroizing::new(text.to_owned())
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        bail!("no secret given: pipe it on stdin, e.g. `printf %s \"$KEY\" | keyward credential add …`");
    }
    Ok(ProviderSecret::new(trimmed.to_owned()))
}
