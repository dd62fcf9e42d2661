//! A trained model in f32, bf16 and int8: the digits test accuracy and the argmax agreement
//! with f32 (issue 14's accuracy targets; `--nocapture` prints the figures of docs/precision.md).

use ndarray::{Axis, Ix2};
use spectrans_models::{Config, Gfnet, Precision};
use spectrans_train::data::digits;
use spectrans_train::{Batch, TrainOptions, Trainer, argmax, evaluate};

#[test]
fn a_trained_digits_model_keeps_its_accuracy_in_bf16_and_int8() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/configs/digits.toml"
    );
    let config = Config::load(path).unwrap();
    let (train, test) = digits().split(0.2, 0);
    let options = TrainOptions {
        epochs: 12,
        ..TrainOptions::default()
    };
    let steps = train.len().div_ceil(options.batch_size);
    let mut trainer = Trainer::new(Gfnet::new(&config, 0).unwrap(), options, steps);
    for _ in 0..12 {
        trainer.run_epoch(&train, &test, &mut |_, _, _| {}).unwrap();
    }
    let model = trainer.model;
    let all: Vec<_> = test.examples.iter().collect();
    let batch = Batch::of(&all, test.seq_len).unwrap();
    let predictions = |model: &Gfnet| -> Vec<usize> {
        let logits = model
            .forward(batch.model_input(), None)
            .unwrap()
            .into_dyn()
            .into_dimensionality::<Ix2>()
            .unwrap();
        logits
            .axis_iter(Axis(0))
            .map(|r| argmax(r.as_slice().unwrap()))
            .collect()
    };
    let reference = predictions(&model);
    let f32_accuracy = evaluate(&model, &test, 256).unwrap().metrics["eval_accuracy"];
    println!("| precision | test accuracy | argmax agreement with f32 |");
    println!("| --- | ---: | ---: |");
    println!("| f32 | {:.2} % | 100 % |", f32_accuracy * 100.0);
    assert!(f32_accuracy > 0.85, "the model learned: {f32_accuracy}");
    // Each format from the f32 weights (a reduced precision keeps only its own values).
    for precision in [Precision::Bf16, Precision::Int8] {
        let mut reduced = model.clone();
        reduced.set_precision(precision);
        let accuracy = evaluate(&reduced, &test, 256).unwrap().metrics["eval_accuracy"];
        let same = predictions(&reduced)
            .iter()
            .zip(&reference)
            .filter(|(a, b)| a == b)
            .count();
        let agreement = same as f32 / reference.len() as f32;
        println!(
            "| {precision} | {:.2} % | {:.2} % ({same} of {}) |",
            accuracy * 100.0,
            agreement * 100.0,
            reference.len()
        );
        assert!(
            (accuracy - f32_accuracy).abs() <= 0.005 + 1e-6,
            "{precision}: {accuracy} vs f32 {f32_accuracy}"
        );
        assert!(agreement >= 0.98, "{precision}: agreement {agreement}");
    }
    // Training refuses a reduced precision rather than training something else.
    let mut int8 = model;
    int8.set_precision(Precision::Int8);
    let mut trainer = Trainer::new(int8, TrainOptions::default(), 1);
    let err = trainer.step(&batch, &mut spectrans_train::TrainContext::new(0, true));
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("training runs in f32")
    );
}
