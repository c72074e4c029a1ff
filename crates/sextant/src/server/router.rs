//! The routing table: `(service path, method)` to handler.

use std::collections::HashMap;
use std::sync::Arc;

use super::handler::Handler;

/// A registered service: its metadata string and its methods.
#[derive(Clone, Default)]
pub(crate) struct ServiceEntry {
    pub(crate) metadata: String,
    pub(crate) methods: HashMap<String, Arc<dyn Handler>>,
}

/// The routing table. Replaced wholesale on registration so that lookups take no lock.
#[derive(Clone, Default)]
pub(crate) struct Router {
    pub(crate) services: HashMap<String, ServiceEntry>,
}

impl Router {
    /// The handler for a call, or rpcx's error text.
    pub(crate) fn lookup(
        &self,
        service_path: &str,
        service_method: &str,
    ) -> Result<Arc<dyn Handler>, String> {
        let service = self
            .services
            .get(service_path)
            .ok_or_else(|| format!("rpcx: can't find service {service_path}"))?;
        service
            .methods
            .get(service_method)
            .cloned()
            .ok_or_else(|| format!("rpcx: can't find method {service_method}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::handler::Method;
    use crate::{Context, ServiceError};

    #[test]
    fn lookup_answers_with_rpcx_texts() {
        let mut r = Router::default();
        let m = Method::new("Mul", |_cx: Context, (a, b): (i64, i64)| async move {
            Ok::<_, ServiceError>(a * b)
        });
        r.services
            .entry("Arith".into())
            .or_default()
            .methods
            .insert("Mul".into(), m.handler().clone());
        assert!(r.lookup("Arith", "Mul").is_ok());
        assert_eq!(
            r.lookup("Nope", "Mul").err().unwrap(),
            "rpcx: can't find service Nope"
        );
        assert_eq!(
            r.lookup("Arith", "Div").err().unwrap(),
            "rpcx: can't find method Div"
        );
    }
}
