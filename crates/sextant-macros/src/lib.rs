//! Procedural macros for sextant. Use them through the `sextant` crate: `#[sextant::service]`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Error, FnArg, ImplItem, ItemImpl, LitStr, Type};

/// Turns an inherent impl block into an rpcx service; see `sextant::service` for the rules.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut service_name: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            service_name = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown argument; expected `name = \"...\"`"))
        }
    });
    parse_macro_input!(attr with parser);
    let imp = parse_macro_input!(item as ItemImpl);
    match expand(service_name, imp) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

struct MethodAttr {
    skip: bool,
    name: Option<LitStr>,
}

fn take_method_attr(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Option<MethodAttr>> {
    let mut found = None;
    let mut err = None;
    attrs.retain(|a| {
        if !a.path().is_ident("sextant") {
            return true;
        }
        let mut m = MethodAttr {
            skip: false,
            name: None,
        };
        let r = a.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                m.skip = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                m.name = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("unknown sextant attribute; expected `skip` or `name = \"...\"`"))
            }
        });
        if let Err(e) = r {
            err = Some(e);
        }
        found = Some(m);
        false
    });
    match err {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

fn pascal_case(s: &str) -> String {
    s.trim_start_matches("r#")
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

fn type_name(ty: &Type) -> syn::Result<String> {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .ok_or_else(|| Error::new(ty.span(), "cannot name this type")),
        _ => Err(Error::new(
            ty.span(),
            "#[sextant::service] needs a named type; give the service a name with #[sextant::service(name = \"...\")]",
        )),
    }
}

fn expand(service_name: Option<LitStr>, mut imp: ItemImpl) -> syn::Result<TokenStream2> {
    if let Some((_, path, _)) = &imp.trait_ {
        return Err(Error::new(
            path.span(),
            "#[sextant::service] goes on an inherent impl block (`impl MyService { ... }`), not a trait impl",
        ));
    }
    let name = match service_name {
        Some(n) => n.value(),
        None => type_name(&imp.self_ty)?,
    };
    if name.is_empty() {
        return Err(Error::new(
            Span::call_site(),
            "the service name must not be empty",
        ));
    }

    let mut methods = Vec::new();
    for item in imp.items.iter_mut() {
        let ImplItem::Fn(f) = item else { continue };
        let attr = take_method_attr(&mut f.attrs)?;
        if attr.as_ref().is_some_and(|a| a.skip) {
            continue;
        }
        if f.sig.asyncness.is_none() {
            if attr.is_some() {
                return Err(Error::new(
                    f.sig.span(),
                    "only `async fn` methods can be service methods",
                ));
            }
            continue;
        }
        let receiver_ok =
            matches!(f.sig.receiver(), Some(r) if r.reference.is_some() && r.mutability.is_none());
        if !receiver_ok {
            return Err(Error::new(
                f.sig.span(),
                "a service method takes `&self` (add #[sextant(skip)] to leave this function out)",
            ));
        }
        let typed: Vec<&syn::PatType> = f
            .sig
            .inputs
            .iter()
            .filter_map(|a| match a {
                FnArg::Typed(t) => Some(t),
                FnArg::Receiver(_) => None,
            })
            .collect();
        if typed.len() != 2 {
            return Err(Error::new(
                f.sig.inputs.span(),
                "a service method has the shape `async fn name(&self, cx: sextant::Context, args: Args) -> Result<Reply, E>`",
            ));
        }
        let ctx_ty = &typed[0].ty;
        let arg_ty = &typed[1].ty;
        let ident = &f.sig.ident;
        let wire = attr
            .and_then(|a| a.name)
            .map(|n| n.value())
            .unwrap_or_else(|| pascal_case(&ident.to_string()));
        methods.push(quote! {
            ::sextant::Method::new(#wire, {
                let this = ::sextant::__private::Arc::clone(&self);
                move |cx: #ctx_ty, args: #arg_ty| {
                    let this = ::sextant::__private::Arc::clone(&this);
                    async move { this.#ident(cx, args).await }
                }
            })
        });
    }
    if methods.is_empty() {
        return Err(Error::new(
            imp.self_ty.span(),
            "#[sextant::service] found no `async fn(&self, Context, Args)` methods in this impl block",
        ));
    }

    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    Ok(quote! {
        #imp

        impl #impl_generics ::sextant::Service for #self_ty #where_clause {
            fn service_name(&self) -> &'static str {
                #name
            }

            fn methods(self: ::sextant::__private::Arc<Self>) -> ::sextant::__private::Vec<::sextant::Method> {
                ::std::vec![#(#methods),*]
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::pascal_case;

    #[test]
    fn wire_names() {
        assert_eq!(pascal_case("mul"), "Mul");
        assert_eq!(pascal_case("user_info"), "UserInfo");
        assert_eq!(pascal_case("r#type"), "Type");
        assert_eq!(pascal_case("_private_x"), "PrivateX");
    }
}
