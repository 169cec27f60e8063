//! Errors as `application/problem+json` (RFC 9457): the one place where failures become answers.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use callopt_domain::ValidationError;
use callopt_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong with this request, for a human.
    pub detail: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error a handler returns; converted to a problem answer in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a field is invalid.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The body is not the JSON expected.
    #[error("{0}")]
    BadBody(String),
    /// No or unknown API key.
    #[error("a valid API key is required: Authorization: Bearer <key>")]
    Unauthorized,
    /// The request is understood and refused (DNI on an unverified origin).
    #[error("{detail}")]
    Forbidden {
        /// Why.
        detail: String,
    },
    /// No such object in the caller's account.
    #[error("no such {0} in this account")]
    NotFound(&'static str),
    /// A unique field collides.
    #[error("{0} already exists")]
    Conflict(String),
    /// A well-formed request that cannot be carried out as asked.
    #[error("{detail}")]
    Unprocessable {
        /// Why.
        detail: String,
        /// Which field, if one.
        field: Option<String>,
    },
    /// The body is larger than this endpoint takes.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// The client sent too many requests; it may try again after this many seconds.
    #[error("too many requests: try again in {0} seconds")]
    TooManyRequests(u64),
    /// Something failed on our side.
    #[error("internal error")]
    Unexpected(#[source] anyhow::Error),
}

impl ApiError {
    /// Maps a store error, naming the kind of object looked for.
    pub fn store(what: &'static str) -> impl Fn(StoreError) -> ApiError {
        move |e| match e {
            StoreError::NotFound => ApiError::NotFound(what),
            StoreError::Conflict(field) => ApiError::Conflict(field),
            StoreError::BadReference(field) => ApiError::Unprocessable {
                detail: format!("{field} does not name an object of this account"),
                field: Some(field),
            },
            StoreError::Unexpected(e) => ApiError::Unexpected(e.into()),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<String>) {
        match self {
            Self::Validation(v) => (
                StatusCode::BAD_REQUEST,
                "invalid-field",
                "A field is invalid",
                Some(v.field.clone()),
            ),
            Self::BadBody(_) => (
                StatusCode::BAD_REQUEST,
                "bad-body",
                "The body is not valid",
                None,
            ),
            Self::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "The body is too large",
                None,
            ),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
                None,
            ),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "Refused", None),
            Self::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
                None,
            ),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found", None),
            Self::Conflict(f) => (
                StatusCode::CONFLICT,
                "conflict",
                "Already exists",
                Some(f.clone()),
            ),
            Self::Unprocessable { field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Cannot be done",
                field.clone(),
            ),
            Self::Unexpected(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                None,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Unexpected(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let (status, kind, title, field) = self.parts();
        let body = Problem {
            kind: format!("https://callopt.dev/problems/{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail: self.to_string(),
            field,
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A JSON body extractor whose rejections are problems naming what was wrong.
pub struct Json<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(ApiError::BadBody(rejection.body_text())),
        }
    }
}

/// A path extractor whose rejections are problems.
pub struct Path<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => Err(ValidationError::new("path", rejection.body_text()).into()),
        }
    }
}

/// A query-string extractor whose rejections are problems.
pub struct Query<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rejection) => Err(ValidationError::new("query", rejection.body_text()).into()),
        }
    }
}
