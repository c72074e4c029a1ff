//! Service registration: [`Service`], [`RegisterOptions`] and the `register*` methods of
//! [`Server`] (rpcx's `Register`, `RegisterName`, `RegisterFunction`, `RegisterFunctionName`).
//!
//! The routing table is replaced wholesale on every change (copy, edit, swap), so the call path
//! reads it without a lock; registrations are serialized by a mutex held only while the copy is
//! edited.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use sextant_protocol::{Decode, Encode};

use super::handler::Method;
use super::router::{Router, ServiceEntry};
use super::Server;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::util::lock;

/// A service made of methods, usually generated from an impl block by
/// [`#[sextant::service]`](crate::service).
pub trait Service: Send + Sync + 'static {
    /// The name the service is registered under by [`Server::register`]: the type name unless the
    /// macro was given `name = "..."`.
    fn service_name(&self) -> &'static str;
    /// The service's methods, each bound to this instance.
    fn methods(self: Arc<Self>) -> Vec<Method>;
}

/// Which methods of a service to register, under which name, with which metadata.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RegisterOptions {
    /// The service path; default: the service's own name. Not for
    /// [`Server::register_fn_with`], where the service path is an argument.
    pub name: Option<String>,
    /// rpcx's metadata string, e.g. `weight=10&group=test`; default empty.
    pub metadata: String,
    /// Only these methods (wire names); default: all of them. Not for
    /// [`Server::register_fn_with`].
    pub methods: Option<Vec<String>>,
}

impl RegisterOptions {
    /// Registers under `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the metadata string.
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Registers only these methods.
    pub fn methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, methods: I) -> Self {
        self.methods = Some(methods.into_iter().map(Into::into).collect());
        self
    }
}

impl Server {
    fn update_router(&self, f: impl FnOnce(&mut Router) -> Result<()>) -> Result<()> {
        let _guard = lock(&self.inner.register_lock);
        let mut router = Router::clone(&self.inner.router.load());
        f(&mut router)?;
        self.inner.router.store(Arc::new(router));
        Ok(())
    }

    /// Registers every method of `service` under its own name (rpcx's `Register`).
    pub fn register<S: Service>(&self, service: S) -> Result<()> {
        self.register_with(service, RegisterOptions::default())
    }

    /// Registers `service` under `name` with rpcx's metadata string (rpcx's `RegisterName`).
    pub fn register_name<S: Service>(&self, name: &str, service: S, metadata: &str) -> Result<()> {
        self.register_with(
            service,
            RegisterOptions::default().name(name).metadata(metadata),
        )
    }

    /// Registers `service` with explicit options: a name, metadata, a subset of methods.
    pub fn register_with<S: Service>(&self, service: S, options: RegisterOptions) -> Result<()> {
        let service = Arc::new(service);
        let name = options
            .name
            .unwrap_or_else(|| service.service_name().to_string());
        check_name(&name)?;
        let mut methods = service.methods();
        if let Some(only) = &options.methods {
            for m in only {
                if !methods.iter().any(|x| x.name() == m) {
                    return Err(Error::Config(format!("service {name} has no method {m}")));
                }
            }
            methods.retain(|m| only.iter().any(|o| o == m.name()));
        }
        if methods.is_empty() {
            return Err(Error::Config(format!(
                "service {name} has no methods to register"
            )));
        }
        let metadata = options.metadata;
        let entry = ServiceEntry {
            metadata: metadata.clone(),
            methods: methods
                .into_iter()
                .map(|m| (m.name().to_string(), self.inner.wrap_handler(m.handler())))
                .collect(),
        };
        self.update_router(|r| {
            r.services.insert(name.clone(), entry);
            Ok(())
        })?;
        self.notify_register(&name, &metadata);
        Ok(())
    }

    fn notify_register(&self, service_path: &str, metadata: &str) {
        for p in self.inner.plugins().iter() {
            p.on_register(self, service_path, metadata);
        }
    }

    /// Registers one function as `service_path.method` (rpcx's `RegisterFunctionName`). Several
    /// functions can share a service path.
    ///
    /// ```
    /// use sextant::{Context, Server, ServiceError};
    /// let server = Server::new();
    /// server.register_fn("Arith", "Mul", |_cx: Context, (a, b): (i64, i64)| async move {
    ///     Ok::<_, ServiceError>(a * b)
    /// })?;
    /// assert_eq!(server.method_names("Arith"), ["Mul"]);
    /// # Ok::<(), sextant::Error>(())
    /// ```
    pub fn register_fn<F, Fut, A, R, E>(&self, service_path: &str, method: &str, f: F) -> Result<()>
    where
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
        A: Decode + Send + 'static,
        R: Encode + Default + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.register_fn_with(service_path, method, f, RegisterOptions::default())
    }

    /// Like [`register_fn`](Server::register_fn), with options: `metadata` (rpcx's metadata
    /// string, e.g. `weight=10`) replaces the service's metadata string when not empty. The
    /// service path and method are the arguments, so `name` and `methods` must not be set.
    ///
    /// ```
    /// use sextant::{Context, RegisterOptions, Server, ServiceError};
    /// let server = Server::new();
    /// server.register_fn_with(
    ///     "Arith",
    ///     "Mul",
    ///     |_cx: Context, (a, b): (i64, i64)| async move { Ok::<_, ServiceError>(a * b) },
    ///     RegisterOptions::default().metadata("weight=10&group=test"),
    /// )?;
    /// assert_eq!(server.service_metadata("Arith").as_deref(), Some("weight=10&group=test"));
    /// # Ok::<(), sextant::Error>(())
    /// ```
    pub fn register_fn_with<F, Fut, A, R, E>(
        &self,
        service_path: &str,
        method: &str,
        f: F,
        options: RegisterOptions,
    ) -> Result<()>
    where
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
        A: Decode + Send + 'static,
        R: Encode + Default + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        check_name(service_path)?;
        check_name(method)?;
        if options.name.is_some() || options.methods.is_some() {
            return Err(Error::Config(format!(
                "register_fn_with({service_path:?}, {method:?}): RegisterOptions::name and \
                 ::methods do not apply to a function (its service path and method are the \
                 arguments); set only metadata"
            )));
        }
        let m = Method::new(method, f);
        let metadata = options.metadata;
        let mut service_metadata = String::new();
        self.update_router(|r| {
            let entry = r.services.entry(service_path.to_string()).or_default();
            if !metadata.is_empty() {
                entry.metadata = metadata;
            }
            entry
                .methods
                .insert(method.to_string(), self.inner.wrap_handler(m.handler()));
            service_metadata = entry.metadata.clone();
            Ok(())
        })?;
        self.notify_register(service_path, &service_metadata);
        Ok(())
    }

    /// Removes a service. Calls already running finish; new calls get `can't find service`.
    pub fn unregister(&self, service_path: &str) -> Result<()> {
        self.update_router(|r| match r.services.remove(service_path) {
            Some(_) => Ok(()),
            None => Err(Error::Config(format!(
                "service {service_path} is not registered"
            ))),
        })?;
        for p in self.inner.plugins().iter() {
            p.on_unregister(self, service_path);
        }
        Ok(())
    }

    /// The registered service paths, sorted.
    pub fn service_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.router.load().services.keys().cloned().collect();
        v.sort();
        v
    }

    /// The metadata string a service was registered with.
    pub fn service_metadata(&self, service_path: &str) -> Option<String> {
        self.inner
            .router
            .load()
            .services
            .get(service_path)
            .map(|s| s.metadata.clone())
    }

    /// The wire names of a service's methods, sorted.
    pub fn method_names(&self, service_path: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .router
            .load()
            .services
            .get(service_path)
            .map(|s| s.methods.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Config(
            "service and method names must not be empty".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceError;

    async fn mul(_cx: Context, (a, b): (i64, i64)) -> Result<i64, ServiceError> {
        Ok(a * b)
    }

    #[test]
    fn functions_share_a_service_and_its_metadata() {
        let server = Server::new();
        server.register_fn("Arith", "Mul", mul).unwrap();
        server
            .register_fn_with(
                "Arith",
                "Times",
                mul,
                RegisterOptions::default().metadata("weight=3"),
            )
            .unwrap();
        server.register_fn("Arith", "Again", mul).unwrap();
        assert_eq!(server.method_names("Arith"), ["Again", "Mul", "Times"]);
        // Registering with empty metadata keeps what was set.
        assert_eq!(
            server.service_metadata("Arith").as_deref(),
            Some("weight=3")
        );
    }

    #[test]
    fn bad_registrations_are_refused_with_a_reason() {
        let server = Server::new();
        let e = server.register_fn("", "Mul", mul).unwrap_err();
        assert!(e.to_string().contains("must not be empty"), "{e}");
        let e = server
            .register_fn_with("A", "M", mul, RegisterOptions::default().name("B"))
            .unwrap_err();
        assert!(e.to_string().contains("do not apply to a function"), "{e}");
        let e = server.unregister("Nope").unwrap_err();
        assert!(e.to_string().contains("not registered"), "{e}");
    }
}
