//! The Cohere request for one stage and one image.

use cohere::{ChatRequest, ContentPart, ImageUrl, Message, ResponseFormat};
use domain::pipeline::StageSpec;

/// The chat request that asks `stage`'s question about `image` (bytes of type `media_type`).
pub fn build(stage: &StageSpec, media_type: &str, image: &[u8]) -> ChatRequest {
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = &stage.system_prompt {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(vec![
        ContentPart::text(stage.prompt.clone()),
        ContentPart::image(ImageUrl::data_uri(
            media_type,
            image,
            Some(stage.image_detail.into()),
        )),
    ]));
    let mut request = ChatRequest::new(stage.model.clone(), messages);
    request.temperature = stage.temperature;
    request.max_tokens = stage.max_tokens;
    request.response_format = stage
        .json_schema
        .as_ref()
        .map(|schema| ResponseFormat::JsonObject {
            json_schema: Some(schema.clone()),
        });
    request
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_stage_becomes_a_system_message_then_its_prompt_and_the_image() {
        let stage: StageSpec = serde_json::from_value(json!({
            "name": "detect",
            "model": "command-a-vision-07-2025",
            "system_prompt": "Be brief.",
            "prompt": "An animal?",
            "json_schema": {"type": "object", "required": ["animal"]},
            "temperature": 0.0,
            "max_tokens": 20,
            "image_detail": "high"
        }))
        .expect("a stage");
        let body = serde_json::to_value(build(&stage, "image/png", b"png")).expect("JSON");
        assert_eq!(body["model"], "command-a-vision-07-2025");
        assert_eq!(body["temperature"], 0.0);
        assert_eq!(body["max_tokens"], 20);
        assert_eq!(
            body["response_format"],
            json!({"type": "json_object", "json_schema": {"type": "object", "required": ["animal"]}})
        );
        let messages = body["messages"].as_array().expect("messages");
        assert_eq!(
            messages[0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(messages[1]["role"], "user");
        let content = messages[1]["content"].as_array().expect("content");
        assert_eq!(content[0], json!({"type": "text", "text": "An animal?"}));
        assert_eq!(content[1]["type"], "image_url");
        assert_eq!(content[1]["image_url"]["url"], "data:image/png;base64,cG5n");
        assert_eq!(content[1]["image_url"]["detail"], "high");
    }

    #[test]
    fn a_bare_stage_leaves_cohere_s_defaults_alone() {
        let stage: StageSpec =
            serde_json::from_value(json!({"name": "d", "prompt": "Describe."})).expect("a stage");
        let body = serde_json::to_value(build(&stage, "image/jpeg", b"jpg")).expect("JSON");
        let sent: Vec<&str> = body
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(sent, ["messages", "model"], "{body}");
        assert_eq!(
            body["messages"].as_array().map(Vec::len),
            Some(1),
            "no system message"
        );
    }
}
