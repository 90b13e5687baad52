//! Hostile and mangled input: the loader must never panic, must stay bounded, and whatever it loads
//! must survive a round trip through the YAML emitter. A deterministic mutation run over the shipped
//! examples (the cargo-fuzz target in fuzz/ explores the same properties without a budget).

use palisade_k8s::{Loaded, load_str};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/manifests");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out.sort();
    assert!(!out.is_empty());
    out
}

const TOKENS: &[&str] = &[
    "\n",
    " ",
    "  ",
    "- ",
    ": ",
    "---\n",
    "...\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!str ",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "#",
    "\t",
    "%YAML 1.2\n",
    "? ",
    "yes",
    "0x1F",
    "\u{feff}",
    "\\u0000",
    "~",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(6) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(4) {
            0 => {
                bytes.remove(at);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                for (i, c) in token.chars().enumerate() {
                    bytes.insert(at + i, c);
                }
            }
            2 => bytes.truncate(at),
            _ => {
                let end = (at + rng.below(80)).min(bytes.len());
                let slice: Vec<char> = bytes[at..end].to_vec();
                let to = rng.below(bytes.len());
                for (i, c) in slice.into_iter().enumerate() {
                    bytes.insert(to + i, c);
                }
            }
        }
    }
    bytes.into_iter().collect()
}

#[test]
fn mutated_manifests_never_panic_and_round_trip() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut objects = 0usize;
    for round in 0..3000 {
        let seed = &seeds[round % seeds.len()];
        let text = mutate(&mut rng, seed);
        load_str(&text, "mutated.yaml", |loaded| {
            if let Loaded::Object(obj) = loaded {
                objects += 1;
                let yaml = palisade_k8s::emit::to_yaml(&obj.value);
                let back = palisade_k8s::parse_documents(&yaml)
                    .unwrap_or_else(|e| panic!("emitted YAML does not load: {e}\n{yaml}\nfrom:\n{text}"));
                assert_eq!(back, vec![obj.value], "round trip\n{yaml}");
            }
        });
    }
    assert!(
        objects > 1000,
        "mutations should still leave most documents loadable: {objects}"
    );
}

#[test]
fn pathological_inputs_are_bounded() {
    let cases = [
        "[".repeat(100_000),
        "{a: ".repeat(50_000),
        "- ".repeat(100_000),
        format!("a: &a [{}]\nb: [{}]\n", "x,".repeat(10_000), "*a,".repeat(10_000)),
        "\"".repeat(100_000),
        "a:\n".repeat(10_000),
        "---\n".repeat(100_000),
        format!("k: '{}'\n", "x".repeat(5_000_000)),
    ];
    for text in &cases {
        load_str(text, "p.yaml", |_| {});
    }
}
