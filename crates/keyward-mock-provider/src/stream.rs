//! Streamed response bodies built from timed steps; a step without bytes breaks the connection
//! mid-body, as a provider crash or network cut would.

use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::stream;

pub(crate) struct Step {
    pub delay: Duration,
    /// `None`: abort the response here.
    pub bytes: Option<String>,
}

impl Step {
    pub(crate) fn send(bytes: String, delay: Duration) -> Self {
        Self {
            delay,
            bytes: Some(bytes),
        }
    }

    /// Breaks the connection after a pause, so the headers and earlier chunks are flushed
    /// first (an immediate error would look like a failed connect, not a mid-stream drop).
    pub(crate) fn abort() -> Self {
        Self {
            delay: Duration::from_millis(100),
            bytes: None,
        }
    }
}

pub(crate) fn body(steps: Vec<Step>) -> Body {
    Body::from_stream(stream::unfold(steps.into_iter(), |mut steps| async move {
        let step = steps.next()?;
        if !step.delay.is_zero() {
            tokio::time::sleep(step.delay).await;
        }
        let item = match step.bytes {
            Some(bytes) => Ok(Bytes::from(bytes)),
            None => Err(std::io::Error::other("mock provider dropped the stream")),
        };
        Some((item, steps))
    }))
}

/// Like [`body`], for binary frames carried as Latin-1 strings (one char per byte).
pub(crate) fn latin1_body(steps: Vec<Step>) -> Body {
    Body::from_stream(stream::unfold(steps.into_iter(), |mut steps| async move {
        let step = steps.next()?;
        if !step.delay.is_zero() {
            tokio::time::sleep(step.delay).await;
        }
        let item = match step.bytes {
            Some(text) => Ok(Bytes::from(
                text.chars().map(|c| c as u8).collect::<Vec<u8>>(),
            )),
            None => Err(std::io::Error::other("mock provider dropped the stream")),
        };
        Some((item, steps))
    }))
}

/// `chunk` again and again, for ever: a provider that streams tiny events without end.
pub(crate) fn endless(chunk: String) -> Body {
    let chunk = Bytes::from(chunk);
    Body::from_stream(stream::repeat_with(move || {
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}
