//! The JSON on the wire, checked against Cohere's OpenAPI (`shared/cohere/cohere-openapi.yaml`,
//! operation `chatv2`).

#![allow(clippy::unwrap_used)]

use cohere::{
    ChatRequest, ChatResponse, ContentPart, Detail, FinishReason, ImageUrl, Message,
    ResponseContent, ResponseFormat,
};
use serde_json::{Value, json};

/// The `Images` example of `chatv2` (`x-fern-examples`), request body.
const SPEC_IMAGE_REQUEST: &str = r#"{
    "model": "command-a-vision-07-2025",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this image"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://cohere.com/favicon-32x32.png", "detail": "auto"}
                }
            ]
        }
    ],
    "stream": false
}"#;

/// The `Images` example of `chatv2`, response body (a `ChatResponseV2`).
const SPEC_IMAGE_RESPONSE: &str = r#"{
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "message": {
        "role": "assistant",
        "content": [
            {
                "type": "text",
                "text": "The image you've provided is quite abstract and blurred, making it challenging to discern specific details. However, I can describe the general shapes and colors present:\n\n1. **Shapes and Colors:**\n  - There are three main shapes in the image.\n  - The largest shape at the top is a dark green, irregular oval.\n  - Below it, on the left, there's a smaller, bright orange circle.\n  - To the right of the orange circle, there's another oval shape, this one in a light purple color.\n\n2. **Arrangement:**\n  - The green oval is positioned at the top center of the image.\n  - The orange circle is directly below the green oval, slightly to the left.\n  - The purple oval is to the right of the orange circle, forming a rough triangular arrangement with the other two shapes.\n\n3. **Blurriness:**\n  - The entire image is blurred, which softens the edges of the shapes and makes it difficult to identify any specific details or textures within the shapes.\n\nGiven the abstract nature of the image, it's open to interpretation. The shapes could represent various objects or concepts depending on the viewer's perspective. If you have any specific questions about the image or need further clarification, feel free to ask!\n"
            }
        ]
    },
    "finish_reason": "COMPLETE",
    "usage": {
        "billed_units": {"input_tokens": 5, "output_tokens": 418},
        "tokens": {"input_tokens": 71, "output_tokens": 418}
    }
}"#;

/// The `Tools` example of `chatv2`, response body: thinking content, tool calls, no text.
const SPEC_TOOLS_RESPONSE: &str = r#"{
    "id": "9e5f00aa-bf1e-481a-abe3-0eceac18c3ec",
    "message": {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "I will first find the sales summary for 29th September 2023. Then, I will find the details of the products in the 'Electronics' category."
            }
        ],
        "tool_calls": [
            {
                "id": "query_daily_sales_report_hgxxmkby3wta",
                "type": "function",
                "function": {"name": "query_daily_sales_report", "arguments": "{\"day\": \"2023-09-29\"}"}
            },
            {
                "id": "query_product_catalog_rpg0z5h8yyz2",
                "type": "function",
                "function": {"name": "query_product_catalog", "arguments": "{\"category\": \"Electronics\"}"}
            }
        ]
    },
    "finish_reason": "TOOL_CALL",
    "usage": {
        "billed_units": {"input_tokens": 127, "output_tokens": 69},
        "tokens": {"input_tokens": 1032, "output_tokens": 124}
    }
}"#;

#[test]
fn the_spec_s_image_example_request_is_what_we_serialize() {
    let request = ChatRequest::new(
        "command-a-vision-07-2025",
        vec![Message::user(vec![
            ContentPart::text("Describe this image"),
            ContentPart::image(ImageUrl {
                url: "https://cohere.com/favicon-32x32.png".into(),
                detail: Some(Detail::Auto),
            }),
        ])],
    );
    let mut expected: Value = serde_json::from_str(SPEC_IMAGE_REQUEST).unwrap();
    // `stream` defaults to false; the client never streams and leaves it out.
    expected.as_object_mut().unwrap().remove("stream");
    assert_eq!(serde_json::to_value(&request).unwrap(), expected);
}

#[test]
fn a_request_with_every_field_serializes_to_the_spec_s_shapes() {
    let schema = json!({
        "type": "object",
        "properties": {"label": {"type": "string"}, "confidence": {"type": "number"}},
        "required": ["label", "confidence"]
    });
    let request = ChatRequest {
        model: "command-a-vision-07-2025".into(),
        messages: vec![
            Message::system("You label images. Answer in JSON."),
            Message::user(vec![
                ContentPart::text("Label this image as JSON"),
                ContentPart::image(ImageUrl::data_uri(
                    "image/png",
                    b"\x89PNG\r\n\x1a\n",
                    Some(Detail::Low),
                )),
            ]),
        ],
        response_format: Some(ResponseFormat::JsonObject {
            json_schema: Some(schema.clone()),
        }),
        temperature: Some(0.2),
        max_tokens: Some(512),
    };
    let expected = json!({
        "model": "command-a-vision-07-2025",
        "messages": [
            {"role": "system", "content": "You label images. Answer in JSON."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Label this image as JSON"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}
                    }
                ]
            }
        ],
        "response_format": {"type": "json_object", "json_schema": schema},
        "temperature": 0.2,
        "max_tokens": 512
    });
    let serialized = serde_json::to_value(&request).unwrap();
    assert_eq!(serialized, expected);
    // And the request reads back as itself.
    assert_eq!(
        serde_json::from_value::<ChatRequest>(serialized).unwrap(),
        request
    );
}

#[test]
fn unset_optional_fields_are_left_out() {
    let request = ChatRequest::new(
        "m",
        vec![Message::user(vec![ContentPart::image(ImageUrl::data_uri(
            "image/jpeg",
            b"",
            None,
        ))])],
    );
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({
            "model": "m",
            "messages": [{
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"}}]
            }]
        })
    );
}

#[test]
fn response_formats_serialize_as_tagged_objects() {
    assert_eq!(
        serde_json::to_value(ResponseFormat::Text).unwrap(),
        json!({"type": "text"})
    );
    assert_eq!(
        serde_json::to_value(ResponseFormat::JsonObject { json_schema: None }).unwrap(),
        json!({"type": "json_object"})
    );
}

#[test]
fn a_data_uri_is_the_media_type_and_padded_standard_base64() {
    let image = ImageUrl::data_uri("image/webp", &[0xfb, 0xff, 0xbf], Some(Detail::High));
    assert_eq!(image.url, "data:image/webp;base64,+/+/");
    assert_eq!(image.detail, Some(Detail::High));
    assert_eq!(
        ImageUrl::data_uri("image/gif", b"GIF89a!", None).url,
        "data:image/gif;base64,R0lGODlhIQ=="
    );
}

#[test]
fn the_debug_output_of_a_data_uri_is_short() {
    let image = ImageUrl::data_uri("image/png", &[7; 100_000], None);
    let debug = format!("{image:?}");
    assert!(debug.len() < 200, "{debug}");
    assert!(debug.contains("data:image/png;base64,"), "{debug}");
}

#[test]
fn the_spec_s_image_example_response_deserializes() {
    let response: ChatResponse = serde_json::from_str(SPEC_IMAGE_RESPONSE).unwrap();
    assert_eq!(response.id, "c14c80c3-18eb-4519-9460-6c92edd8cfb4");
    assert_eq!(response.finish_reason, FinishReason::Complete);
    assert!(
        response
            .text()
            .starts_with("The image you've provided is quite abstract and blurred")
    );
    assert!(response.text().ends_with("feel free to ask!\n"));
    let usage = response.usage.unwrap();
    let billed = usage.billed_units.unwrap();
    assert_eq!(billed.input_tokens, Some(5.0));
    assert_eq!(billed.output_tokens, Some(418.0));
    let tokens = usage.tokens.unwrap();
    assert_eq!(tokens.input_tokens, Some(71.0));
    assert_eq!(tokens.output_tokens, Some(418.0));
}

#[test]
fn the_spec_s_tool_call_example_response_deserializes_with_no_text() {
    let response: ChatResponse = serde_json::from_str(SPEC_TOOLS_RESPONSE).unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCall);
    assert!(matches!(
        response.message.content.as_slice(),
        [ResponseContent::Thinking { .. }]
    ));
    assert_eq!(response.text(), "");
}

#[test]
fn unknown_fields_finish_reasons_and_content_types_are_tolerated() {
    let response: ChatResponse = serde_json::from_value(json!({
        "id": "abc",
        "finish_reason": "SOMETHING_NEW",
        "message": {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "{\"label\": "},
                {"type": "hologram", "data": [1, 2, 3]},
                {"type": "thinking", "thinking": "hmm"},
                {"type": "text", "text": "\"cat\"}", "annotations": []}
            ],
            "citations": [],
            "brand_new": {"nested": true}
        },
        "usage": {
            "billed_units": {"input_tokens": 10, "output_tokens": 3, "image_tokens": 400},
            "tokens": {"input_tokens": 500, "output_tokens": 3},
            "cached_tokens": 0
        },
        "logprobs": [],
        "meta": {"api_version": {"version": "2"}}
    }))
    .unwrap();
    assert_eq!(response.finish_reason, FinishReason::Other);
    assert_eq!(response.message.content[1], ResponseContent::Other);
    assert_eq!(response.text(), "{\"label\": \"cat\"}");
}

#[test]
fn a_response_without_usage_or_content_deserializes() {
    let response: ChatResponse = serde_json::from_value(json!({
        "id": "abc",
        "finish_reason": "MAX_TOKENS",
        "message": {"role": "assistant", "content": null}
    }))
    .unwrap();
    assert_eq!(response.finish_reason, FinishReason::MaxTokens);
    assert!(response.usage.is_none());
    assert_eq!(response.text(), "");
}
