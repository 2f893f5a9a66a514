//! Pipelining: several statements sent on one connection before any answer is awaited, so a
//! batch costs one round trip per phase.

use std::task::Poll;

use tokio_postgres::Row;

/// A statement's future, boxed so that a variable set of them can be pipelined.
pub(super) type Pending<'t> =
    std::pin::Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 't>>;

/// Runs `statements` pipelined on one connection: each is first polled (which sends it) in
/// order, before any answer is awaited, so Postgres executes them in exactly this order and
/// the batch costs one round trip per phase rather than one per statement.
pub(super) async fn pipelined(
    mut statements: Vec<Pending<'_>>,
) -> Result<Vec<Vec<Row>>, tokio_postgres::Error> {
    let mut results: Vec<Option<Vec<Row>>> = statements.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (statement, result) in statements.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match statement.as_mut().poll(cx) {
                    Poll::Ready(Ok(rows)) => *result = Some(rows),
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await?;
    Ok(results.into_iter().map(Option::unwrap_or_default).collect())
}
