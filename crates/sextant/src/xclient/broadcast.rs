//! Fork, broadcast and inform: one call to every server of the service.
//!
//! The fail mode and the selector play no part (as in rpcx). Every server in the current list
//! gets the call at once; a server whose circuit breaker is open is not called and counts as
//! failed with an error that says so. All three wait at most for the call's deadline — its
//! `timeout`, else the XClient's `default_timeout`, else `broadcast_timeout` (60 s, rpcx's
//! fixed limit) — and calls still running then fail with [`Error::DeadlineExceeded`].

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use sextant_protocol::{Decode, Encode};

use super::call::{Call, Typed};
use super::XClient;
use crate::client::{CallOptions, Response};
use crate::error::{Error, Result};

/// A server and its result.
type Outcome<R> = (Arc<str>, Result<Response<R>>);

/// One server's outcome of [`XClient::inform`] (rpcx's `Receipt`).
#[derive(Debug)]
#[non_exhaustive]
pub struct Receipt<R> {
    /// The server, as discovery lists it.
    pub address: String,
    /// Its reply or error.
    pub result: Result<Response<R>>,
}

impl XClient {
    /// Sends the call to every server and returns the first success; the calls still running are
    /// then cancelled (rpcx's `Fork`). When every server fails, returns the last error.
    pub async fn fork<A, R>(
        &self,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let mut last_error = None;
        let mut calls = self.each::<A, R>(service_method, args, options)?;
        while let Some((_, r)) = calls.next().await {
            match r {
                Ok(r) => return Ok(r),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| self.no_servers()))
    }

    /// Sends the call to every server and succeeds only if all succeed, returning one of the
    /// replies (rpcx's `Broadcast`). Returns the first error as soon as one server fails; the
    /// calls still running are then cancelled.
    pub async fn broadcast<A, R>(
        &self,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<Response<R>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let mut first = None;
        let mut calls = self.each::<A, R>(service_method, args, options)?;
        while let Some((_, r)) = calls.next().await {
            let r = r?;
            first.get_or_insert(r);
        }
        first.ok_or_else(|| self.no_servers())
    }

    /// Sends the call to every server and returns every outcome with its server, sorted by
    /// address (rpcx's `Inform`). Fails only when there is no server or the XClient is closed.
    pub async fn inform<A, R>(
        &self,
        service_method: &str,
        args: &A,
        options: CallOptions,
    ) -> Result<Vec<Receipt<R>>>
    where
        A: Encode + ?Sized,
        R: Decode,
    {
        let mut receipts: Vec<Receipt<R>> = self
            .each::<A, R>(service_method, args, options)?
            .map(|(address, result)| Receipt {
                address: address.to_string(),
                result,
            })
            .collect()
            .await;
        receipts.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(receipts)
    }

    fn no_servers(&self) -> Error {
        self.inner.no_server(&[])
    }

    /// The call on every current server, as the outcomes come in.
    fn each<'a, A, R>(
        &'a self,
        method: &'a str,
        args: &'a A,
        mut options: CallOptions,
    ) -> Result<FuturesUnordered<impl Future<Output = Outcome<R>> + 'a>>
    where
        A: Encode + ?Sized,
        R: Decode + 'a,
    {
        let inner = &*self.inner;
        inner.check_open()?;
        if options.hash_key.is_some() {
            return Err(Error::Config(
                "CallOptions::hash_key routes a call to one server; fork, broadcast and inform \
                 go to every server: drop the key"
                    .into(),
            ));
        }
        let timeout = options
            .timeout
            .or(inner.options.client.default_timeout)
            .unwrap_or(inner.options.broadcast_timeout);
        let deadline = Some(Instant::now() + timeout);
        inner.add_auth(&mut options);
        let snap = inner.servers.load_full();
        let call = Call {
            body: Typed::<A, R>::new(method, args, true),
            deadline,
        };
        if snap.nodes.is_empty() {
            return Err(snap.no_server(&inner.service_path, &inner.options.group, &[]));
        }
        let calls = FuturesUnordered::new();
        for node in &snap.nodes {
            let Some(ep) = snap.endpoints.get(node.address()) else {
                continue;
            };
            let address = ep.key.clone();
            let permit = ep.acquire();
            let o = options.clone();
            calls.push(async move {
                let r = match permit {
                    Some(p) => inner.attempt(p, &call, o, 0).await,
                    None => Err(Error::NoServer(format!(
                        "{}: the circuit breaker of {address} is open",
                        inner.service_path
                    ))),
                };
                (address, r)
            });
        }
        Ok(calls)
    }
}
