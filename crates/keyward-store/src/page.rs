//! Keyset pagination: ids are UUIDv7, so "after this id" is a stable cursor.

/// Largest page a caller may ask for.
pub const MAX_PAGE: u32 = 500;

#[derive(Clone, Debug)]
pub struct PageRequest {
    /// The id of the last row of the previous page.
    pub after: Option<String>,
    pub limit: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            after: None,
            limit: 100,
        }
    }
}

impl PageRequest {
    /// Rows to fetch: one more than the limit, to learn whether another page exists.
    pub(crate) fn fetch_limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, MAX_PAGE)) + 1
    }
}

#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Trims the extra row fetched by `fetch_limit` and sets the cursor from the last item.
    pub(crate) fn from_rows(
        mut items: Vec<T>,
        request: &PageRequest,
        id: impl Fn(&T) -> String,
    ) -> Self {
        let limit = usize::try_from(request.limit.clamp(1, MAX_PAGE)).unwrap_or(100);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(id)
        } else {
            None
        };
        Self { items, next_cursor }
    }

    /// Converts fetched rows and pages them (see [`PageRequest::fetch_limit`]).
    pub(crate) fn convert<R>(
        rows: Vec<R>,
        request: &PageRequest,
        id: impl Fn(&T) -> String,
    ) -> Result<Self, crate::StoreError>
    where
        T: TryFrom<R, Error = crate::StoreError>,
    {
        let items = rows
            .into_iter()
            .map(T::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_rows(items, request, id))
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}
