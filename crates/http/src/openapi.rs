//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations.

use crate::{api, dni_api, pagination, problem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An account's API key"))
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Callopt", description = "Call optimization: dynamic number insertion, routing and analytics."),
    modifiers(&BearerKey),
    paths(
        api::campaigns::create, api::campaigns::list, api::campaigns::get,
        api::campaigns::update, api::campaigns::delete,
        api::pools::create, api::pools::list, api::pools::get, api::pools::update,
        api::pools::delete, api::pools::utilisation,
        api::numbers::create, api::numbers::list, api::numbers::get, api::numbers::update,
        api::numbers::delete, api::numbers::import,
        api::domains::create, api::domains::list, api::domains::get, api::domains::verify,
        api::domains::delete,
        api::sessions::get, api::sessions::refusals,
        api::targets::create, api::targets::list, api::targets::get, api::targets::update,
        api::targets::delete,
        api::plans::create, api::plans::list, api::plans::get, api::plans::update,
        api::plans::delete,
        api::calls::list, api::calls::get, api::calls::export,
        api::reports::calls, api::reports::pools, api::live::live,
        api::carriers::create, api::carriers::list, api::carriers::get, api::carriers::update,
        api::carriers::delete,
        dni_api::sessions, dni_api::feed,
        api::webhooks::create, api::webhooks::list, api::webhooks::get, api::webhooks::update,
        api::webhooks::delete, api::webhooks::deliveries,
        api::conversions::convert_call, api::conversions::convert_by_caller,
        api::guard::scans, api::guard::override_scan, api::guard::quarantines,
        api::guard::quarantine, api::guard::quarantine_page, api::guard::lift, api::guard::audit, api::guard::abuse_reports,
        api::guard::report_abuse,
    ),
    components(schemas(
        problem::Problem,
        pagination::Listing<api::campaigns::CampaignDto>,
        pagination::Listing<api::pools::PoolDto>,
        pagination::Listing<api::pools::PoolUtilisationDto>,
        pagination::Listing<api::numbers::NumberDto>,
        pagination::Listing<api::domains::DomainDto>,
        pagination::Listing<api::sessions::RefusalDto>,
        pagination::Listing<api::targets::TargetDto>,
        pagination::Listing<api::plans::PlanDto>,
        pagination::Listing<api::calls::CallDto>,
        api::live::SnapshotDto, api::reports::PoolReportDto, api::reports::PoolHistoryDto,
        api::reports::PoolHourDto, api::reports::ReportDto, api::reports::ReportRowDto, api::reports::HungUpDto,
        pagination::Listing<api::carriers::CarrierConnectionDto>,
        api::carriers::CarrierConnectionInput,
        api::targets::TargetInput, api::targets::HoursInput, api::targets::HoursDto,
        api::targets::WeeklyDto, api::targets::CapsDto,
        api::plans::PlanInput, api::plans::FiltersDto, api::plans::FiltersInput,
        api::plans::DuplicateCallerDto, api::plans::NoTargetDto, api::plans::NoTargetInput,
        api::calls::CallDetailDto, api::calls::AttemptDto, api::calls::AttributionDto,
        pagination::Listing<api::webhooks::WebhookDto>,
        pagination::Listing<api::webhooks::DeliveryDto>,
        api::webhooks::WebhookInput, api::webhooks::CreatedWebhookDto,
        api::conversions::ConversionDto, api::conversions::CallConversionInput,
        api::conversions::CallerConversionInput,
        pagination::Listing<api::guard::ScanDto>, pagination::Listing<api::guard::QuarantineDto>,
        pagination::Listing<api::guard::AuditDto>, pagination::Listing<api::guard::AbuseReportDto>,
        api::guard::NoteRequest, api::guard::PageQuarantineRequest, api::guard::AbuseReportRequest, api::guard::AbuseReportReceipt,
    ))
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
