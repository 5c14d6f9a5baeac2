//! The stand-in's vocabulary: the labels and their groups, the words of a description, the
//! project's sample images, and how property names are matched against them.

use super::seed::{derive, index};

/// Every label an image can get. An image's label is `LABELS[seed % len]`, except for the
/// project's sample images (`samples/images/`), which get their true label.
pub const LABELS: &[&str] = &[
    "cat",
    "dog",
    "horse",
    "bird",
    "fish",
    "person",
    "car",
    "bicycle",
    "boat",
    "rocket",
    "building",
    "brick wall",
    "tree",
    "flower",
    "grass",
    "landscape",
    "coffee cup",
    "coin",
    "galaxy",
    "text document",
    "retina",
];

/// Labels that are animals (a boolean property named `animal`, `is_animal`, `has_animal`,
/// `contains_animals`... is true exactly for these).
pub const ANIMALS: &[&str] = &["cat", "dog", "horse", "bird", "fish"];

/// Labels that are vehicles (for boolean properties named like `vehicle`).
pub const VEHICLES: &[&str] = &["car", "bicycle", "boat", "rocket"];

/// Labels that are plants (for boolean properties named like `plant`).
pub const PLANTS: &[&str] = &["tree", "flower", "grass"];

pub(super) const ADJECTIVES: &[&str] = &[
    "bright",
    "dark",
    "sharp",
    "slightly blurred",
    "colourful",
    "muted",
    "close-up",
    "distant",
];

pub(super) const COLOURS: &[&str] = &[
    "red", "orange", "yellow", "green", "blue", "purple", "brown", "grey", "black", "white",
];

pub(super) const CLOSING: &[&str] = &[
    "The lighting is even and the subject is in focus.",
    "The background is slightly out of focus.",
    "The picture appears to have been taken outdoors.",
    "The picture appears to have been taken indoors.",
    "The composition is centred on the subject.",
    "Nothing else in the frame draws attention.",
];

/// The sample images under `samples/images/` (by sha256 of their bytes), with what they show.
const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "person",
        "white",
    ),
    (
        "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
        "brick wall",
        "grey",
    ),
    (
        "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        "person",
        "grey",
    ),
    (
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "cat",
        "brown",
    ),
    (
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "coffee cup",
        "brown",
    ),
    (
        "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
        "coin",
        "grey",
    ),
    (
        "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
        "grass",
        "grey",
    ),
    (
        "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455",
        "horse",
        "black",
    ),
    (
        "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
        "galaxy",
        "black",
    ),
    (
        "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
        "retina",
        "red",
    ),
    (
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        "rocket",
        "blue",
    ),
    (
        "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
        "text document",
        "grey",
    ),
];

pub(super) fn identify(seed: &[u8; 32]) -> (&'static str, &'static str) {
    let hex = hex::encode(seed);
    if let Some((_, label, colour)) = SAMPLES.iter().find(|(sha, _, _)| *sha == hex) {
        return (label, colour);
    }
    (
        LABELS[index(seed, LABELS.len())],
        COLOURS[index(&derive(seed, "#colour"), COLOURS.len())],
    )
}

/// Lower case, words separated by one space, prefixes such as `is_`/`has_` and a plural `s`
/// removed: `"containsAnimals"` and `"has_animal"` both give `"animal"`.
pub(super) fn normalise(name: &str) -> String {
    let mut spaced = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            spaced.push(' ');
        }
        if c == '_' || c == '-' {
            spaced.push(' ');
        } else {
            spaced.extend(c.to_lowercase());
        }
    }
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let words = match words.as_slice() {
        ["is" | "has" | "contains" | "shows" | "depicts", rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let words = match words {
        ["a" | "an", rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let joined = words.join(" ");
    match joined.strip_suffix('s') {
        Some(singular) if !singular.is_empty() && !joined.ends_with("ss") => singular.to_owned(),
        _ => joined,
    }
}

/// Names under which a string (or string array) holds the image's label(s).
pub(super) fn is_label_name(name: &str) -> bool {
    matches!(
        normalise(name).as_str(),
        "label" | "category" | "categorie" | "class" | "classe" | "object" | "subject" | "tag"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_before_matching() {
        assert_eq!(normalise("has_animals"), "animal");
        assert_eq!(normalise("containsAnimal"), "animal");
        assert_eq!(normalise("is_a_cat"), "cat");
        assert_eq!(normalise("glass"), "glass");
        assert_eq!(normalise("label"), "label");
    }
}
