//! A `.safetensors` file: `input_ids` or `inputs_embeds`, and `targets`.

use std::path::Path;

use ndarray::{ArrayD, Axis, Ix2, Ix3};
use spectrans_models::tensor_file::TensorFile;

use super::{DataError, Dataset, Example, Input, Target, Task, collect};

/// The examples of a safetensors data file.
pub(super) fn load_safetensors(path: &Path, task: Task) -> Result<Dataset, DataError> {
    let problem = |message: String| DataError::Tensors {
        path: path.to_path_buf(),
        message,
    };
    let file = TensorFile::open(path).map_err(|e| problem(e.to_string()))?;
    let input: Vec<Input> = if file.contains("inputs_embeds") {
        let x = file
            .read_f32("inputs_embeds")
            .map_err(|e| problem(e.to_string()))?
            .into_dimensionality::<Ix3>()
            .map_err(|_| problem("`inputs_embeds`: expected shape (B, N, D)".into()))?;
        x.axis_iter(Axis(0))
            .map(|e| Input::Embeddings(e.to_owned()))
            .collect()
    } else if file.contains("input_ids") {
        let ids = file
            .read_i64("input_ids")
            .map_err(|e| problem(e.to_string()))?
            .into_dimensionality::<Ix2>()
            .map_err(|_| problem("`input_ids`: expected shape (B, N)".into()))?;
        ids.axis_iter(Axis(0))
            .map(|row| Input::Tokens(row.to_vec()))
            .collect()
    } else {
        return Err(problem(
            "no input: expected `input_ids` (B, N) or `inputs_embeds` (B, N, D)".into(),
        ));
    };
    if !file.contains("targets") {
        return Err(problem("no `targets` tensor".into()));
    }
    let batch = input.len();
    let shape_error = |expected: &str, found: &[usize]| {
        problem(format!(
            "`targets`: expected shape {expected} for {}, found {found:?}",
            task.name()
        ))
    };
    let targets: Vec<Target> = match task {
        Task::Classification | Task::TokenLabels => {
            let t = file
                .read_i64("targets")
                .map_err(|e| problem(e.to_string()))?;
            match (task, t.ndim()) {
                (Task::Classification, 1) if t.len() == batch => {
                    t.iter().map(|&c| Target::Class(c)).collect()
                }
                (Task::TokenLabels, 2) if t.shape()[0] == batch => t
                    .axis_iter(Axis(0))
                    .map(|row| Target::Labels(row.iter().copied().collect()))
                    .collect(),
                (Task::Classification, _) => return Err(shape_error("(B,)", t.shape())),
                _ => return Err(shape_error("(B, N)", t.shape())),
            }
        }
        Task::Regression | Task::Hidden => {
            let t: ArrayD<f32> = file
                .read_f32("targets")
                .map_err(|e| problem(e.to_string()))?;
            if let Some(i) = t.iter().position(|v| !v.is_finite()) {
                return Err(problem(format!(
                    "`targets` holds a non-finite value at flat index {i}"
                )));
            }
            match (task, t.ndim()) {
                (Task::Regression, 1) if t.len() == batch => {
                    t.iter().map(|&v| Target::Values(vec![v])).collect()
                }
                (Task::Regression, 2) if t.shape()[0] == batch => t
                    .axis_iter(Axis(0))
                    .map(|row| Target::Values(row.iter().copied().collect()))
                    .collect(),
                (Task::Hidden, 3) if t.shape()[0] == batch => t
                    .axis_iter(Axis(0))
                    .map(|e| {
                        e.into_dimensionality::<Ix2>()
                            .map(|e| Target::Hidden(e.to_owned()))
                            .map_err(|_| shape_error("(B, N, D)", t.shape()))
                    })
                    .collect::<Result<_, _>>()?,
                (Task::Regression, _) => return Err(shape_error("(B,) or (B, 1)", t.shape())),
                _ => return Err(shape_error("(B, N, D)", t.shape())),
            }
        }
    };
    let examples = input
        .into_iter()
        .zip(targets)
        .enumerate()
        .map(|(i, (input, target))| Example {
            input,
            target,
            line: i + 1,
        })
        .collect();
    collect(path, examples, task)
}
