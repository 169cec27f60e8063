//! Property tests over the edge parsers: whatever bytes arrive, parsing answers Ok or a
//! ValidationError naming a field, never panics, and what it accepts is normalised.

use callopt_domain::campaign::SourceRule;
use callopt_domain::number::parse_languages;
use callopt_domain::{
    Attribution, CampaignKey, DomainHost, TrackingNumber, Trigger, VisitorId, E164,
};
use proptest::prelude::*;

fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[+]?[0-9 ().\\-]{0,24}",
        "\\+[1-9][0-9]{6,14}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn e164_parse_never_panics_and_round_trips(raw in phone_like(), country in prop::option::of("[A-Za-z]{0,3}")) {
        match E164::parse("e164", &raw, country.as_deref()) {
            Ok(n) => {
                prop_assert!(n.as_str().starts_with('+'));
                let again = E164::parse("e164", n.as_str(), None).unwrap();
                prop_assert_eq!(&again, &n);
                prop_assert_eq!(format!("+{}{}", n.calling_code(), n.national_significant()), n.as_str());
                let _ = (n.display_for(Some("US")), n.area_code(), n.is_toll_free());
            }
            Err(e) => prop_assert!(e.field == "e164" || e.field == "country"),
        }
    }

    #[test]
    fn tracking_number_parse_never_panics(raw in phone_like(), langs in prop::collection::vec(any::<String>(), 0..4)) {
        let _ = TrackingNumber::parse(&raw, None, &langs, None);
        let _ = parse_languages("languages", &langs);
    }

    #[test]
    fn hosts_parse_or_refuse(raw in any::<String>()) {
        if let Ok(h) = DomainHost::parse("host", &raw) {
            prop_assert_eq!(DomainHost::parse("host", h.as_str()).unwrap(), h.clone());
            prop_assert!(h.covers(&h));
        }
        let _ = DomainHost::from_origin(&raw);
    }

    #[test]
    fn attribution_parse_never_panics(path in any::<String>(), query in any::<String>(), referrer in prop::option::of(any::<String>())) {
        let url = format!("https://example.com/{path}?{query}");
        if let Ok(a) = Attribution::parse(&url, referrer.as_deref()) {
            prop_assert!(a.query.len() <= 64);
            let _ = a.source();
        }
        let _ = Attribution::parse(&query, None);
    }

    #[test]
    fn small_parsers_never_panic(raw in any::<String>(), value in prop::option::of(any::<String>())) {
        let _ = VisitorId::parse("visitor", &raw);
        let _ = CampaignKey::parse("campaign", &raw);
        let _ = Trigger::parse("trigger_parameter", Some(&raw));
        for kind in ["utm_source", "referrer_domain", "click_id", "any", raw.as_str()] {
            let _ = SourceRule::parse("rule", kind, value.as_deref(), &raw);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The caller's number read in one pass is the number as written (or the numbering plan's
    /// own reading of it), reads back the same, and has its area code at the front of its
    /// national number.
    #[test]
    fn caller_geography_agrees_with_the_numbering_plan(raw in "\\+[1-9][0-9]{5,14}") {
        let plan = phonenumber::parse(None, &raw)
            .ok()
            .filter(phonenumber::is_valid)
            .map(|n| {
                let e164 = n.format().mode(phonenumber::Mode::E164).to_string();
                let country = n.country().id().map(|id| id.as_ref().to_string());
                (e164, country)
            });
        let ours = E164::parse_with_geography("caller", &raw).ok();
        if let Some((plan_e164, plan_country)) = &plan {
            if *plan_e164 == raw {
                let (e164, country, _) = ours.clone().expect("the plan's valid number is valid");
                prop_assert_eq!(e164.as_str(), plan_e164.as_str());
                prop_assert_eq!(&country, plan_country);
            }
        }
        if let Some((e164, country, area)) = ours {
            let as_plan_read = plan.as_ref().is_some_and(|(p, _)| p == e164.as_str());
            prop_assert!(e164.as_str() == raw || as_plan_read, "{} read as {}", raw, e164);
            let again = E164::parse("caller", e164.as_str(), None);
            prop_assert_eq!(again.as_ref().ok(), Some(&e164), "{} reads back", e164);
            prop_assert_eq!((country, area.clone()), e164.country_and_area());
            prop_assert_eq!(&area, &e164.area_code());
            if let Some(area) = area {
                let national = e164.national_significant();
                prop_assert!(national.trim_start_matches('0').starts_with(&area), "{} {}", e164, area);
            }
        }
    }
}
