//! The seeds' user service: `ServiceUser.UserInfo` returns a user by id.
//!
//! Run: `cargo run --example user-info`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::{Client, ClientOptions, Context, Server, ServiceError};

/// rpcx's `Args{Uid int}`.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    pub uid: i64,
}

/// rpcx's `model.User`, keys as its json tags.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct User {
    #[serde(rename = "id")]
    pub uid: i64,
    #[serde(rename = "addtime")]
    pub add_time: i64,
    #[serde(rename = "utype")]
    pub user_type: i32,
    #[serde(rename = "uface")]
    pub uface: String,
    #[serde(rename = "uname")]
    pub user_name: String,
}

pub struct ServiceUser;

#[sextant::service]
impl ServiceUser {
    /// In real life this reads a database or a cache.
    async fn user_info(&self, _cx: Context, args: Args) -> Result<User, ServiceError> {
        println!("service: {}", args.uid);
        Ok(User {
            uid: args.uid,
            add_time: 14990093,
            user_type: 2,
            uface: "http://image.xxxx.xxx/t.gif".into(),
            user_name: "Joke".into(),
        })
    }
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let server = Server::new();
    // rpcx: s.RegisterName("ServiceUser", new(service.ServiceUser), "")
    server.register_name("ServiceUser", ServiceUser, "")?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let client = Client::connect(&address, ClientOptions::default()).await?;
    let user: User = client
        .call("ServiceUser", "UserInfo", &Args { uid: 999 })
        .await?;
    println!("999 : {user:?}");
    assert_eq!(user.user_name, "Joke");

    client.close();
    server.shutdown(Duration::from_secs(1)).await
}
