//! `undersign-bench-hello PORT`: answers `GET /` with "hello" on 127.0.0.1:PORT, 2 workers.
use actix_web::{get, App, HttpServer, Responder};

#[get("/")]
async fn hello() -> impl Responder {
    "hello"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: undersign-bench-hello PORT");
    HttpServer::new(|| App::new().service(hello))
        .workers(2)
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
