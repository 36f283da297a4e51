//! Turning page-token APIs into item streams.

use std::collections::HashSet;
use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::error::{Error, Result};

/// Streams every item of a paginated listing, fetching pages lazily.
///
/// Google may return pages shorter than asked, or even empty, while a `nextPageToken` is
/// still present (spec §6.2); only a missing token ends the listing. A token seen twice
/// would loop forever, so it is reported as a protocol error instead.
pub(crate) fn paginate<T, F, Fut>(what: &'static str, fetch: F) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: FnMut(Option<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'static,
{
    struct Pager<F> {
        fetch: F,
        next: Option<Option<String>>,
        seen: HashSet<String>,
    }
    let pager = Pager {
        fetch,
        next: Some(None),
        seen: HashSet::new(),
    };
    stream::try_unfold(pager, move |mut pager| async move {
        let Some(token) = pager.next.take() else {
            return Ok(None);
        };
        let (items, next) = (pager.fetch)(token).await?;
        if let Some(next) = &next
            && !pager.seen.insert(next.clone())
        {
            return Err(Error::Protocol {
                context: what.to_owned(),
                reason: "the server repeated a page token".to_owned(),
            });
        }
        pager.next = next.map(Some);
        Ok(Some((items, pager)))
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn empty_and_short_pages_with_tokens_are_followed() {
        let pages = vec![
            (vec![1, 2], Some("a".to_owned())),
            (vec![], Some("b".to_owned())),
            (vec![3], None),
        ];
        let mut calls = Vec::new();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = log.clone();
        let mut it = pages.into_iter();
        let items: Vec<i32> = paginate("t", move |token| {
            log2.lock().unwrap().push(token);
            let page = it.next().unwrap();
            async move { Ok(page) }
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);
        calls.extend(log.lock().unwrap().drain(..));
        assert_eq!(calls, vec![None, Some("a".into()), Some("b".into())]);
    }

    #[tokio::test]
    async fn repeated_token_is_an_error_not_a_loop() {
        let result: Result<Vec<i32>> =
            paginate("t", |_| async { Ok((vec![1], Some("same".to_owned()))) })
                .try_collect()
                .await;
        assert!(matches!(result, Err(Error::Protocol { .. })));
    }
}
