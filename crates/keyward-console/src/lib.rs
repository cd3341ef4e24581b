//! Keyward's web console, without I/O: the assets built into the binary (`assets`), the
//! session cookie (`cookie`), CSRF tokens (`csrf`), the security headers every console response
//! carries (`policy`) and the per-address throttle of failed sign-ins (`throttle`).
//!
//! The console is a small script-driven page over the admin API: everything it shows comes
//! from `/admin/v1` through the same domain rules as any admin client; `keyward-http` serves
//! these assets, the sign-in routes, and accepts a console session in place of a bearer token.
//!
//! Invariants: the assets are the files under `assets/`, compiled in (no CDN, no request that
//! leaves the origin); the page renders API data as text, never as markup; a CSRF token is
//! derived from the session token by a keyed hash, so it reveals nothing of the session and is
//! compared in constant time.
#![warn(clippy::too_many_lines)]

pub mod assets;
pub mod cookie;
pub mod csrf;
pub mod policy;
pub mod throttle;
