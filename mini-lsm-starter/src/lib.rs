// placeholder until `cargo x sync` writes the starter
