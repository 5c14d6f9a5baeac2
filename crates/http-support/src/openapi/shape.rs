//! The document in the shape client generators understand, describing the same JSON.
//!
//! utoipa writes a serde-tagged enum as a `oneOf` of anonymous objects, a `#[serde(flatten)]`ed
//! tagged enum as an `allOf` of the enum and the rest, a generic `Paged<T>` with `T` copied in
//! place, and an optional reference with its description beside the `$ref`. Generators such as
//! openapi-python-client drop such schemas (and every operation using them). So, once the
//! document is complete:
//!
//! - a tagged union becomes a `oneOf` of named variants (`<Union><Tag>`, e.g. `FilterAll`) with
//!   a `discriminator` on the tag and its `mapping`, so recursion goes through named references;
//! - an object that flattens a tagged union becomes a tagged union of whole objects (each
//!   variant's fields with the shared ones, e.g. `JobEventProgress`), and the flattened union,
//!   no longer referenced, leaves the document;
//! - a `$ref` among the alternatives of a `oneOf`/`anyOf` (e.g. a reference or `null`) stands
//!   alone: its description moves to the alternatives' parent;
//! - an object schema without properties allows any (`additionalProperties: true`, which JSON
//!   Schema assumes anyway), so that generators do not take it for an empty object;
//! - `Paged_<T>`'s items refer to `T`.

use std::collections::BTreeMap;

use utoipa::openapi::{
    Components, OpenApi, Ref, RefOr, Schema,
    schema::{
        AdditionalProperties, AllOf, AnyOf, ArrayItems, Discriminator, Object, OneOf, SchemaType,
        Type,
    },
};

/// Applies every shaping step to `spec`'s component schemas (see the module docs).
pub fn shape_for_generators(spec: &mut OpenApi) {
    let Some(components) = spec.components.as_mut() else {
        return;
    };
    distribute_flattened_unions(components);
    name_union_variants(components);
    for schema in components.schemas.values_mut() {
        walk(schema, &mut |schema| {
            hoist_ref_description(schema);
            allow_any_properties(schema);
        });
    }
    refer_to_paged_items(components);
}

/// The tag of a union whose every alternative is an inline object: the property that each
/// alternative requires and restricts to one string, with that string per alternative.
fn tagged_variants(one_of: &OneOf) -> Option<(String, Vec<String>)> {
    let objects: Vec<&Object> = one_of
        .items
        .iter()
        .map(|item| match item {
            RefOr::T(Schema::Object(object)) => Some(object),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let first = objects.first()?;
    first.properties.keys().find_map(|name| {
        let tags = objects
            .iter()
            .map(|object| single_string(object, name))
            .collect::<Option<Vec<_>>>()?;
        Some((name.clone(), tags))
    })
}

/// The one string a required property of `object` may take, if it is so restricted.
fn single_string(object: &Object, property: &str) -> Option<String> {
    if !object.required.iter().any(|name| name == property) {
        return None;
    }
    match object.properties.get(property)? {
        RefOr::T(Schema::Object(tag)) => match tag.enum_values.as_deref()? {
            [serde_json::Value::String(value)] => Some(value.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `cancel_requested` → `CancelRequested`.
fn pascal_case(tag: &str) -> String {
    tag.split(['_', '-', ' '])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// Whether any schema refers to the component `name`.
fn is_referenced(components: &Components, name: &str) -> bool {
    let location = format!("\"{}\"", Ref::from_schema_name(name).ref_location);
    components
        .schemas
        .values()
        .any(|schema| serde_json::to_string(schema).is_ok_and(|json| json.contains(&location)))
}

/// `allOf: [$ref: Union, {shared fields}]` → `oneOf` of each variant's fields with the shared
/// ones; the union goes once nothing refers to it.
fn distribute_flattened_unions(components: &mut Components) {
    let mut flattened = Vec::new();
    let names: Vec<String> = components.schemas.keys().cloned().collect();
    for name in names {
        let Some(RefOr::T(Schema::AllOf(all_of))) = components.schemas.get(&name) else {
            continue;
        };
        let [RefOr::Ref(union_ref), RefOr::T(Schema::Object(shared))] = all_of.items.as_slice()
        else {
            continue;
        };
        let union_name = union_ref
            .ref_location
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(RefOr::T(Schema::OneOf(union))) = components.schemas.get(&union_name) else {
            continue;
        };
        if tagged_variants(union).is_none() {
            continue;
        }
        let items = union
            .items
            .iter()
            .filter_map(|item| match item {
                RefOr::T(Schema::Object(variant)) => {
                    let mut whole = variant.clone();
                    whole.properties.extend(shared.properties.clone());
                    whole.required.extend(shared.required.iter().cloned());
                    Some(RefOr::T(Schema::Object(whole)))
                }
                _ => None,
            })
            .collect();
        let mut one_of = OneOf::new();
        one_of.items = items;
        one_of.description = all_of.description.clone();
        components
            .schemas
            .insert(name, RefOr::T(Schema::OneOf(one_of)));
        flattened.push(union_name);
    }
    for union_name in flattened {
        if !is_referenced(components, &union_name) {
            components.schemas.remove(&union_name);
        }
    }
}

/// A tagged union of inline objects → a `oneOf` of named variants with a discriminator.
fn name_union_variants(components: &mut Components) {
    let mut variants = BTreeMap::new();
    for (name, schema) in components.schemas.iter_mut() {
        let RefOr::T(Schema::OneOf(one_of)) = schema else {
            continue;
        };
        let Some((tag, values)) = tagged_variants(one_of) else {
            continue;
        };
        let mut mapping = BTreeMap::new();
        let mut items = Vec::new();
        for (item, value) in std::mem::take(&mut one_of.items).into_iter().zip(values) {
            let variant = format!("{name}{}", pascal_case(&value));
            items.push(schema_ref(&variant));
            mapping.insert(value, Ref::from_schema_name(&variant).ref_location);
            variants.insert(variant, item);
        }
        one_of.items = items;
        one_of.discriminator = Some(Discriminator::with_mapping(tag, mapping));
    }
    components.schemas.extend(variants);
}

/// Calls `visit` on `schema` and on every schema nested in it (not through references).
fn walk(schema: &mut RefOr<Schema>, visit: &mut impl FnMut(&mut Schema)) {
    let RefOr::T(schema) = schema else { return };
    visit(schema);
    match schema {
        Schema::Object(object) => {
            for property in object.properties.values_mut() {
                walk(property, visit);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                walk(items, visit);
            }
        }
        Schema::OneOf(OneOf { items, .. })
        | Schema::AnyOf(AnyOf { items, .. })
        | Schema::AllOf(AllOf { items, .. }) => {
            for item in items.iter_mut() {
                walk(item, visit);
            }
        }
        _ => {}
    }
}

/// Moves the description of a `$ref` alternative of a `oneOf`/`anyOf` to the alternatives'
/// parent.
fn hoist_ref_description(schema: &mut Schema) {
    let (Schema::OneOf(OneOf {
        items, description, ..
    })
    | Schema::AnyOf(AnyOf {
        items, description, ..
    })) = schema
    else {
        return;
    };
    for item in items.iter_mut() {
        if let RefOr::Ref(reference) = item
            && !reference.description.is_empty()
        {
            let moved = std::mem::take(&mut reference.description);
            description.get_or_insert(moved);
        }
    }
}

/// An object schema that lists no properties says that any are allowed (as JSON Schema
/// already means), so generators type it as a map rather than an empty object.
fn allow_any_properties(schema: &mut Schema) {
    let Schema::Object(object) = schema else {
        return;
    };
    let is_object = match &object.schema_type {
        SchemaType::Type(kind) => *kind == Type::Object,
        SchemaType::Array(kinds) => kinds.contains(&Type::Object),
        SchemaType::AnyValue => false,
    };
    if is_object && object.properties.is_empty() && object.additional_properties.is_none() {
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(true)));
    }
}

/// `Paged_<T>`: `items` refers to the component `T` instead of copying it.
fn refer_to_paged_items(components: &mut Components) {
    let names: Vec<String> = components.schemas.keys().cloned().collect();
    for name in names {
        let Some(item) = name.strip_prefix("Paged_") else {
            continue;
        };
        if !components.schemas.contains_key(item) {
            continue;
        }
        let item_ref = schema_ref(item);
        if let Some(RefOr::T(Schema::Object(paged))) = components.schemas.get_mut(&name)
            && let Some(RefOr::T(Schema::Array(items))) = paged.properties.get_mut("items")
        {
            items.items = ArrayItems::RefOrSchema(Box::new(item_ref));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::openapi::{ComponentsBuilder, OpenApiBuilder};

    use super::*;

    fn shaped(schemas: Value) -> Value {
        let schemas: BTreeMap<String, RefOr<Schema>> =
            serde_json::from_value(schemas).expect("schemas");
        let mut spec = OpenApiBuilder::new()
            .components(Some(
                ComponentsBuilder::new().schemas_from_iter(schemas).build(),
            ))
            .build();
        shape_for_generators(&mut spec);
        serde_json::to_value(spec.components.expect("components").schemas).expect("JSON")
    }

    fn variant(tag: &str, field: &str, field_schema: Value) -> Value {
        json!({
            "type": "object",
            "description": format!("the {tag} variant"),
            "required": [field, "type"],
            "properties": {field: field_schema, "type": {"type": "string", "enum": [tag]}}
        })
    }

    #[test]
    fn a_tagged_union_becomes_named_variants_with_a_discriminator() {
        let out = shaped(json!({
            "Shape": {
                "oneOf": [
                    variant("circle", "radius", json!({"type": "number"})),
                    variant("group_of", "shapes", json!({"type": "array", "items": {"$ref": "#/components/schemas/Shape"}})),
                ],
                "description": "a shape"
            }
        }));
        assert_eq!(
            out["Shape"],
            json!({
                "oneOf": [
                    {"$ref": "#/components/schemas/ShapeCircle"},
                    {"$ref": "#/components/schemas/ShapeGroupOf"}
                ],
                "description": "a shape",
                "discriminator": {
                    "propertyName": "type",
                    "mapping": {
                        "circle": "#/components/schemas/ShapeCircle",
                        "group_of": "#/components/schemas/ShapeGroupOf"
                    }
                }
            })
        );
        assert_eq!(
            out["ShapeCircle"],
            variant("circle", "radius", json!({"type": "number"}))
        );
        assert_eq!(
            out["ShapeGroupOf"]["properties"]["shapes"]["items"],
            json!({"$ref": "#/components/schemas/Shape"}),
            "recursion goes through the named union"
        );
    }

    #[test]
    fn a_union_without_a_common_single_valued_tag_is_left_alone() {
        let union = json!({
            "oneOf": [
                variant("circle", "radius", json!({"type": "number"})),
                {"type": "object", "properties": {"side": {"type": "number"}}}
            ]
        });
        let out = shaped(json!({"Shape": union.clone()}));
        assert_eq!(out["Shape"], union);
        assert_eq!(out.as_object().expect("schemas").len(), 1);
    }

    #[test]
    fn an_object_flattening_a_tagged_union_becomes_a_union_of_whole_objects() {
        let out = shaped(json!({
            "Kind": {
                "oneOf": [
                    variant("started", "at", json!({"type": "string"})),
                    {"type": "object", "required": ["type"], "properties": {"type": {"type": "string", "enum": ["stopped"]}}}
                ]
            },
            "Event": {
                "allOf": [
                    {"$ref": "#/components/schemas/Kind"},
                    {"type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer"}}}
                ],
                "description": "an event"
            }
        }));
        assert!(
            out["Kind"].is_null(),
            "the flattened union is no longer referenced"
        );
        assert_eq!(out["Event"]["description"], "an event");
        assert_eq!(
            out["Event"]["discriminator"]["mapping"],
            json!({"started": "#/components/schemas/EventStarted", "stopped": "#/components/schemas/EventStopped"})
        );
        assert_eq!(
            out["EventStarted"]["required"],
            json!(["at", "type", "seq"])
        );
        assert_eq!(
            out["EventStopped"]["properties"],
            json!({"seq": {"type": "integer"}, "type": {"type": "string", "enum": ["stopped"]}})
        );
    }

    #[test]
    fn a_described_reference_among_alternatives_stands_alone() {
        let out = shaped(json!({
            "Holder": {
                "type": "object",
                "properties": {
                    "inner": {"oneOf": [
                        {"$ref": "#/components/schemas/Inner", "description": "the inner one"},
                        {"type": "null"}
                    ]},
                    "plain": {"$ref": "#/components/schemas/Inner", "description": "kept"}
                }
            },
            "Inner": {"type": "string"}
        }));
        assert_eq!(
            out["Holder"]["properties"]["inner"],
            json!({
                "oneOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}],
                "description": "the inner one"
            })
        );
        assert_eq!(
            out["Holder"]["properties"]["plain"],
            json!({"$ref": "#/components/schemas/Inner", "description": "kept"}),
            "a reference that is no alternative keeps its description"
        );
    }

    #[test]
    fn an_object_without_properties_allows_any() {
        let out = shaped(json!({
            "Holder": {"type": "object", "properties": {
                "free": {"type": ["object", "null"]},
                "closed": {"type": "object", "additionalProperties": false},
                "text": {"type": "string"}
            }}
        }));
        let properties = &out["Holder"]["properties"];
        assert_eq!(
            properties["free"],
            json!({"type": ["object", "null"], "additionalProperties": true})
        );
        assert_eq!(
            properties["closed"],
            json!({"type": "object", "additionalProperties": false})
        );
        assert_eq!(properties["text"], json!({"type": "string"}));
        assert!(
            out["Holder"].get("additionalProperties").is_none(),
            "an object with properties is left alone"
        );
    }

    #[test]
    fn paged_items_refer_to_their_component() {
        let thing = json!({"type": "object", "properties": {"id": {"type": "string"}}});
        let out = shaped(json!({
            "Thing": thing.clone(),
            "Paged_Thing": {"type": "object", "properties": {
                "items": {"type": "array", "items": thing},
                "total": {"type": "integer"}
            }}
        }));
        assert_eq!(
            out["Paged_Thing"]["properties"]["items"],
            json!({"type": "array", "items": {"$ref": "#/components/schemas/Thing"}})
        );
    }

    #[test]
    fn tags_become_pascal_case_names() {
        assert_eq!(pascal_case("cancel_requested"), "CancelRequested");
        assert_eq!(pascal_case("all"), "All");
        assert_eq!(pascal_case("dead-letter"), "DeadLetter");
    }
}
