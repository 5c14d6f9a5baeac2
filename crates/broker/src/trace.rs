//! W3C trace context in AMQP headers: `traceparent` and `tracestate`, stored as long strings,
//! written and read through the global propagator (so nothing is written while traces are
//! off).
//!
//! A message that is sent on again after a failure (to a delay queue, or as a dead letter)
//! also carries [`ORIGIN_TRACEPARENT`]: the `traceparent` of its first delivery, which the
//! consumer of each later delivery links to.

use lapin::types::{AMQPValue, FieldTable, LongString};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
    trace::{SpanContext, TraceContextExt},
};

/// The W3C header carrying the trace id and the parent span id.
pub const TRACEPARENT: &str = "traceparent";
/// The `traceparent` of a retried message's first delivery.
pub const ORIGIN_TRACEPARENT: &str = "x-origin-traceparent";

struct HeaderInjector<'a>(&'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0
            .insert(key.into(), AMQPValue::LongString(LongString::from(value)));
    }
}

/// Reads headers; `rename` reads the `traceparent` from another header.
struct HeaderExtractor<'a> {
    headers: &'a FieldTable,
    traceparent_from: &'a str,
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let key = if key == TRACEPARENT {
            self.traceparent_from
        } else {
            key
        };
        match self.headers.inner().get(key)? {
            AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
            AMQPValue::ShortString(value) => Some(value.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.headers.inner().keys().map(|k| k.as_str()).collect()
    }
}

/// Writes `context`'s trace context into `headers`.
pub fn inject(context: &Context, headers: &mut FieldTable) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(context, &mut HeaderInjector(headers));
    });
}

/// The trace context a message carries (an empty context when it carries none).
pub fn extract(headers: Option<&FieldTable>) -> Context {
    extract_from(headers, TRACEPARENT)
}

/// The span context of a retried message's first delivery, when it carries one.
pub fn origin(headers: Option<&FieldTable>) -> Option<SpanContext> {
    let context = extract_from(headers, ORIGIN_TRACEPARENT);
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// The value to carry in [`ORIGIN_TRACEPARENT`] when a delivery is sent on: the origin it
/// already carries, else its own `traceparent`.
pub fn origin_of(headers: Option<&FieldTable>) -> Option<String> {
    let headers = headers?;
    [ORIGIN_TRACEPARENT, TRACEPARENT]
        .into_iter()
        .find_map(|key| {
            HeaderExtractor {
                headers,
                traceparent_from: key,
            }
            .get(key)
            .map(str::to_string)
        })
}

fn extract_from(headers: Option<&FieldTable>, traceparent_from: &str) -> Context {
    let empty = FieldTable::default();
    let extractor = HeaderExtractor {
        headers: headers.unwrap_or(&empty),
        traceparent_from,
    };
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(&Context::new(), &extractor)
    })
}

/// The W3C `traceparent` of the current span, to store with work that is published later
/// (`None` while traces are off).
pub fn current_traceparent() -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&tracing::Span::current().context(), &mut carrier);
    });
    carrier.remove(TRACEPARENT)
}

/// The trace context a stored `traceparent` names.
pub fn context_of(traceparent: &str) -> Context {
    let carrier =
        std::collections::HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    fn remote_context() -> Context {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn a_context_injected_into_amqp_headers_is_extracted_unchanged() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let context = remote_context();
        let mut headers = FieldTable::default();
        headers.insert("x-other".into(), AMQPValue::Boolean(true));
        inject(&context, &mut headers);

        assert_eq!(
            headers.inner().get(TRACEPARENT),
            Some(&AMQPValue::LongString(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()
            ))
        );
        let extracted = extract(Some(&headers));
        let span = extracted.span().span_context().clone();
        assert_eq!(span.trace_id(), context.span().span_context().trace_id());
        assert_eq!(span.span_id(), context.span().span_context().span_id());
        assert!(span.is_sampled() && span.is_remote());
        assert_eq!(span.trace_state().get("vendor"), Some("x"));

        // The first delivery's traceparent survives as the origin of a retry.
        assert_eq!(origin(Some(&headers)), None);
        let mut retried = FieldTable::default();
        retried.insert(
            ORIGIN_TRACEPARENT.into(),
            AMQPValue::LongString(origin_of(Some(&headers)).unwrap().into()),
        );
        assert_eq!(
            origin(Some(&retried)).unwrap().span_id(),
            span.span_id(),
            "the origin names the first delivery's parent"
        );
        assert_eq!(
            origin_of(Some(&retried)),
            origin_of(Some(&headers)),
            "an origin is kept"
        );
    }

    #[test]
    fn headers_without_trace_context_give_an_empty_context() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        assert!(!extract(None).span().span_context().is_valid());
        let mut headers = FieldTable::default();
        headers.insert(TRACEPARENT.into(), AMQPValue::LongString("garbage".into()));
        assert!(!extract(Some(&headers)).span().span_context().is_valid());
    }
}
