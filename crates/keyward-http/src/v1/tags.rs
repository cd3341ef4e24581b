//! `x-keyward-tags: feature=search, customer=acme`: attribution recorded on the ledger row.
//! Bounded and restricted so tags stay metadata: at most 20, keys of `[a-z0-9_.-]` up to 64
//! characters, printable values up to 256.

use axum::http::HeaderMap;

use super::Tags;
use crate::error::ApiError;

pub(crate) const HEADER: &str = "x-keyward-tags";
const MAX_TAGS: usize = 20;

pub(crate) fn parse(headers: &HeaderMap) -> Result<Tags, ApiError> {
    let mut tags = Tags::new();
    for value in headers.get_all(HEADER) {
        let text = value.to_str().map_err(|_| {
            ApiError::invalid(HEADER, "x-keyward-tags must be ASCII `key=value` pairs")
        })?;
        for pair in text
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                ApiError::invalid(HEADER, "x-keyward-tags takes `key=value` pairs separated by commas, e.g. feature=search, customer=acme")
            })?;
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            let key_ok = !key.is_empty()
                && key.len() <= 64
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !key_ok || value.len() > 256 || value.chars().any(|c| c.is_control()) {
                return Err(ApiError::invalid(
                    HEADER,
                    "tag keys are 1 to 64 of [a-z0-9_.-]; values at most 256 printable characters",
                ));
            }
            tags.insert(key, value.to_owned());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(HEADER, "at most 20 tags per request"));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn tags_parse_and_bad_tags_are_refused() {
        let tags = parse(&headers("feature=search, Customer=acme")).unwrap();
        assert_eq!(tags["feature"], "search");
        assert_eq!(tags["customer"], "acme");
        assert!(parse(&headers("novalue")).is_err());
        assert!(parse(&headers("bad key=x")).is_err());
        assert!(parse(&HeaderMap::new()).unwrap().is_empty());
    }
}
