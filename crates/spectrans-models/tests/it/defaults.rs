//! The layers' own defaults (`BlockOptions::new`) are spectrans' defaults, the same the config
//! validator applies: a config with only the required fields builds the blocks `new` builds.

use spectrans_config::Config;
use spectrans_layers::BlockOptions;

#[test]
fn block_options_new_matches_a_config_of_defaults() {
    let config =
        Config::from_toml_str("[model]\nhidden_dim = 12\nnum_layers = 3\nsequence_length = 10\n")
            .expect("a valid config");
    assert_eq!(BlockOptions::from(&config), BlockOptions::new(12, 10));
    let with_dropout = Config::from_toml_str(
        "[model]\nhidden_dim = 12\nnum_layers = 3\nsequence_length = 10\ndropout = 0.25\n",
    )
    .expect("a valid config");
    assert_eq!(
        BlockOptions::from(&with_dropout),
        BlockOptions::new(12, 10).with_dropout(0.25)
    );
}
