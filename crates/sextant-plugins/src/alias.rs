//! Service and method aliases (rpcx's `serverplugin.AliasPlugin`).
//!
//! [`AliasPlugin`] serves `Arith.Mul` under a second name as well, say `AliasPath.AliasMethod`:
//! in [`post_read_request`](ServerPlugin::post_read_request), before routing, a request for the
//! alias is renamed to its target. The response carries the names the caller sent (the alias),
//! as rpcx's `PreWriteResponse` restores them; the target's own name still works, and a name
//! that is neither an alias nor a service gets the usual `rpcx: can't find service ...` error.
//!
//! As in rpcx, a renamed request carries the metadata pair [`ALIAS_APPLIED_KEY`]` = "true"`
//! (`__aliasAppliedKey`), which the handler sees in [`Context::metadata`](sextant::Context::metadata);
//! the handler's [`service_path`](sextant::Context::service_path) and
//! [`service_method`](sextant::Context::service_method) are the target's.
//!
//! ```
//! use sextant::Server;
//! use sextant_plugins::alias::AliasPlugin;
//!
//! # fn main() -> sextant::Result<()> {
//! let aliases = AliasPlugin::new()
//!     .alias("AliasPath", "AliasMethod", "Arith", "Mul")?
//!     .alias("Math", "Times", "Arith", "Mul")?;
//! assert_eq!(aliases.resolve("Math", "Times"), Some(("Arith", "Mul")));
//! let server = Server::builder().plugin(aliases).build();
//! # drop(server);
//!
//! // An alias of itself, or one name for two targets, is refused.
//! assert!(AliasPlugin::new().alias("Arith", "Mul", "Arith", "Mul").is_err());
//! # Ok(())
//! # }
//! ```
//!
//! Errors, all [`sextant::Error::Config`]: an empty name, an alias equal to its target, an
//! alias mapped to two different targets, and chains (an alias whose target is an alias, or the
//! other way round), which rpcx does not follow either and which would route calls to a name
//! nothing serves.

use std::collections::HashMap;
use std::fmt;

use sextant::protocol::{ByteStr, Message};
use sextant::{CallHooks, Error, PeerAddr, ServerPlugin};

/// The metadata key set to `"true"` on a request an alias renamed (rpcx's `aliasAppliedKey`).
pub const ALIAS_APPLIED_KEY: &str = "__aliasAppliedKey";

/// Where an alias leads.
#[derive(Clone, PartialEq, Eq)]
struct Target {
    service_path: ByteStr,
    service_method: ByteStr,
}

/// Serves services and methods under other names (rpcx's `serverplugin.AliasPlugin`); see the
/// [module docs](self).
#[derive(Clone, Default)]
pub struct AliasPlugin {
    /// alias service path → alias method → target (two levels, so a lookup builds no key).
    aliases: HashMap<Box<str>, HashMap<Box<str>, Target>>,
}

impl AliasPlugin {
    /// A plugin with no alias yet (rpcx's `NewAliasPlugin`).
    pub fn new() -> AliasPlugin {
        AliasPlugin::default()
    }

    /// Adds an alias: calls to `alias_service_path.alias_service_method` go to
    /// `service_path.service_method` (rpcx's `Alias`). Adding the same alias for the same target
    /// again does nothing.
    ///
    /// An [`Error::Config`] for an empty name, an alias equal to its target, an alias already
    /// mapped elsewhere, or a chain of aliases.
    pub fn alias(
        mut self,
        alias_service_path: &str,
        alias_service_method: &str,
        service_path: &str,
        service_method: &str,
    ) -> Result<AliasPlugin, Error> {
        let what = format!(
            "AliasPlugin: alias {alias_service_path}.{alias_service_method} -> \
             {service_path}.{service_method}"
        );
        for (name, role) in [
            (alias_service_path, "alias service path"),
            (alias_service_method, "alias service method"),
            (service_path, "target service path"),
            (service_method, "target service method"),
        ] {
            if name.is_empty() {
                return Err(Error::Config(format!("{what}: the {role} is empty")));
            }
        }
        if (alias_service_path, alias_service_method) == (service_path, service_method) {
            return Err(Error::Config(format!(
                "{what}: an alias must differ from its target"
            )));
        }
        if let Some(old) = self.lookup(alias_service_path, alias_service_method) {
            if (&*old.service_path, &*old.service_method) == (service_path, service_method) {
                return Ok(self);
            }
            return Err(Error::Config(format!(
                "{what}: {alias_service_path}.{alias_service_method} is already an alias of {}.{}",
                old.service_path, old.service_method
            )));
        }
        if let Some(next) = self.lookup(service_path, service_method) {
            return Err(Error::Config(format!(
                "{what}: the target is itself an alias (of {}.{}), and aliases are not followed \
                 in chains; alias the final target instead",
                next.service_path, next.service_method
            )));
        }
        if let Some((from, _)) = self
            .iter()
            .find(|(_, to)| *to == (alias_service_path, alias_service_method))
        {
            return Err(Error::Config(format!(
                "{what}: {alias_service_path}.{alias_service_method} is the target of alias \
                 {}.{}, and aliases are not followed in chains",
                from.0, from.1
            )));
        }
        self.aliases
            .entry(alias_service_path.into())
            .or_default()
            .insert(
                alias_service_method.into(),
                Target {
                    service_path: service_path.into(),
                    service_method: service_method.into(),
                },
            );
        Ok(self)
    }

    fn lookup(&self, service_path: &str, service_method: &str) -> Option<&Target> {
        self.aliases.get(service_path)?.get(service_method)
    }

    /// The target of the alias `service_path.service_method`, if it is one.
    pub fn resolve(&self, service_path: &str, service_method: &str) -> Option<(&str, &str)> {
        self.lookup(service_path, service_method)
            .map(|t| (&*t.service_path, &*t.service_method))
    }

    /// Every alias as `((alias path, alias method), (target path, target method))`, in no
    /// particular order.
    pub fn iter(&self) -> impl Iterator<Item = ((&str, &str), (&str, &str))> {
        self.aliases.iter().flat_map(|(path, methods)| {
            methods.iter().map(move |(method, t)| {
                ((&**path, &**method), (&*t.service_path, &*t.service_method))
            })
        })
    }

    /// How many aliases there are.
    pub fn len(&self) -> usize {
        self.aliases.values().map(HashMap::len).sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty()
    }
}

impl fmt::Debug for AliasPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pairs: Vec<String> = self
            .iter()
            .map(|((ap, am), (p, m))| format!("{ap}.{am} -> {p}.{m}"))
            .collect();
        pairs.sort();
        f.debug_tuple("AliasPlugin").field(&pairs).finish()
    }
}

impl ServerPlugin for AliasPlugin {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::POST_READ_REQUEST
    }

    fn post_read_request(&self, request: &mut Message, _peer: &PeerAddr) -> Result<(), String> {
        if let Some(t) = self.lookup(&request.service_path, &request.service_method) {
            request.service_path = t.service_path.clone();
            request.service_method = t.service_method.clone();
            request.metadata.insert(
                ByteStr::from_static(ALIAS_APPLIED_KEY),
                ByteStr::from_static("true"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(r: Result<AliasPlugin, Error>) -> String {
        match r {
            Err(Error::Config(text)) => text,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn bad_aliases_are_refused_with_a_message() {
        let e = config_error(AliasPlugin::new().alias("", "M", "Arith", "Mul"));
        assert!(e.contains("alias service path is empty"), "{e}");
        let e = config_error(AliasPlugin::new().alias("A", "M", "Arith", ""));
        assert!(e.contains("target service method is empty"), "{e}");
        let e = config_error(AliasPlugin::new().alias("Arith", "Mul", "Arith", "Mul"));
        assert!(e.contains("must differ from its target"), "{e}");
        let e = config_error(
            AliasPlugin::new()
                .alias("A", "M", "Arith", "Mul")
                .unwrap()
                .alias("A", "M", "Arith", "Add"),
        );
        assert!(e.contains("A.M is already an alias of Arith.Mul"), "{e}");
        let e = config_error(
            AliasPlugin::new()
                .alias("A", "M", "Arith", "Mul")
                .unwrap()
                .alias("B", "N", "A", "M"),
        );
        assert!(
            e.contains("target is itself an alias (of Arith.Mul)"),
            "{e}"
        );
        let e = config_error(
            AliasPlugin::new()
                .alias("A", "M", "B", "N")
                .unwrap()
                .alias("B", "N", "Arith", "Mul"),
        );
        assert!(e.contains("B.N is the target of alias A.M"), "{e}");
    }

    #[test]
    fn aliases_resolve_and_rename_requests() {
        let p = AliasPlugin::new()
            .alias("AliasPath", "AliasMethod", "Arith", "Mul")
            .unwrap()
            .alias("AliasPath", "AliasMethod", "Arith", "Mul")
            .unwrap()
            .alias("AliasPath", "Plus", "Arith", "Add")
            .unwrap();
        assert_eq!(p.len(), 2);
        assert!(!p.is_empty() && AliasPlugin::new().is_empty());
        assert_eq!(p.resolve("AliasPath", "Plus"), Some(("Arith", "Add")));
        assert_eq!(p.resolve("AliasPath", "Nope"), None);
        assert_eq!(p.resolve("Arith", "Mul"), None);

        let peer = PeerAddr::Other("test".into());
        let mut m = Message::new();
        m.service_path = "AliasPath".into();
        m.service_method = "AliasMethod".into();
        p.post_read_request(&mut m, &peer).unwrap();
        assert_eq!((&*m.service_path, &*m.service_method), ("Arith", "Mul"));
        assert_eq!(m.metadata.get(ALIAS_APPLIED_KEY), Some("true"));

        let mut m = Message::new();
        m.service_path = "Arith".into();
        m.service_method = "Mul".into();
        p.post_read_request(&mut m, &peer).unwrap();
        assert_eq!((&*m.service_path, &*m.service_method), ("Arith", "Mul"));
        assert_eq!(m.metadata.get(ALIAS_APPLIED_KEY), None);
        let dbg = format!("{p:?}");
        assert!(dbg.contains("AliasPath.Plus -> Arith.Add"), "{dbg}");
    }
}
