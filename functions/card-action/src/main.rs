use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_req: Request| async {
        Ok::<_, Error>(
            Response::builder()
                .status(501)
                .body(Body::from("not implemented yet"))?,
        )
    }))
    .await
}
