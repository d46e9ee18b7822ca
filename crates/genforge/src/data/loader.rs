//! In-memory dataset and batching. The batch order is a pure function of (seed, step), so a
//! resumed run sees exactly the batches a straight run would, with no loader state to save.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::rng::Rng;
use crate::{Error, Result};

/// Images in [-1, 1], flat `[n, channels, height, width]`.
#[derive(Clone, Debug)]
pub struct Dataset {
    images: Vec<f32>,
    labels: Vec<u32>,
    n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Dataset {
    pub fn new(
        images: Vec<f32>,
        labels: Vec<u32>,
        n: usize,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Self {
        assert_eq!(images.len(), n * channels * height * width);
        Dataset {
            images,
            labels,
            n,
            channels,
            height,
            width,
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn item_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.item_len()..(i + 1) * self.item_len()]
    }

    /// Label of image `i` (`u32::MAX` when the dataset has none).
    pub fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }

    /// The items `range` as a dataset of their own (held-out splits).
    pub fn subset(&self, range: std::ops::Range<usize>) -> Dataset {
        let len = self.item_len();
        Dataset::new(
            self.images[range.start * len..range.end * len].to_vec(),
            self.labels[range.clone()].to_vec(),
            range.len(),
            self.channels,
            self.height,
            self.width,
        )
    }

    /// The items at `indices`, in that order, as a dataset of their own.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        Dataset::new(
            indices
                .iter()
                .flat_map(|&i| self.image(i))
                .copied()
                .collect(),
            indices.iter().map(|&i| self.labels[i]).collect(),
            indices.len(),
            self.channels,
            self.height,
            self.width,
        )
    }

    /// Split off the last `fraction` of the items: (training, held-out).
    pub fn split_holdout(self, fraction: f64) -> (Dataset, Option<Dataset>) {
        let held = (self.n as f64 * fraction).round() as usize;
        if held == 0 {
            return (self, None);
        }
        let keep = self.n - held;
        (self.subset(0..keep), Some(self.subset(keep..self.n)))
    }

    /// `[indices.len(), c, h, w]` on `device`.
    pub fn tensor(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let mut v = Vec::with_capacity(indices.len() * self.item_len());
        for &i in indices {
            v.extend_from_slice(self.image(i));
        }
        Tensor::from_data(
            TensorData::new(v, [indices.len(), self.channels, self.height, self.width]),
            device,
        )
    }

    /// Class labels of `indices`, `[n]` (`u32::MAX` for unlabelled images).
    pub fn labels_tensor(&self, indices: &[usize], device: &Device) -> Tensor<1, Int> {
        let v: Vec<i64> = indices.iter().map(|&i| self.label(i) as i64).collect();
        Tensor::from_data(TensorData::new(v, [indices.len()]), device)
    }

    /// Batches per epoch (the incomplete last batch is dropped so every step has `batch` images).
    pub fn batches_per_epoch(&self, batch: usize) -> Result<usize> {
        if self.n < batch {
            return Err(Error::Config(format!(
                "the dataset has {} images, fewer than train.batch = {batch}; lower --batch or raise data.limit",
                self.n
            )));
        }
        Ok(self.n / batch)
    }

    /// Indices of the batch used at `step` (0-based); see [`BatchSampler`].
    pub fn batch_indices(&self, seed: u64, step: u64, batch: usize) -> Result<Vec<usize>> {
        Ok(BatchSampler::new(self, seed, batch)?.indices(step).to_vec())
    }
}

/// Batch order: epoch `step / batches_per_epoch` is a permutation drawn from `(seed, epoch)`.
/// The permutation is kept between calls, so a training loop shuffles once per epoch.
pub struct BatchSampler {
    seed: u64,
    batch: usize,
    per_epoch: u64,
    epoch: Option<u64>,
    order: Vec<usize>,
}

impl BatchSampler {
    pub fn new(dataset: &Dataset, seed: u64, batch: usize) -> Result<Self> {
        Self::with_len(dataset.len(), seed, batch)
    }

    /// Batches over `n` items (images or code maps).
    pub fn with_len(n: usize, seed: u64, batch: usize) -> Result<Self> {
        if n < batch {
            return Err(Error::Config(format!(
                "the training data has {n} items, fewer than train.batch = {batch}; lower --batch \
                 or use more data"
            )));
        }
        let per_epoch = (n / batch) as u64;
        let order = (0..n).collect();
        Ok(BatchSampler {
            seed,
            batch,
            per_epoch,
            epoch: None,
            order,
        })
    }

    pub fn indices(&mut self, step: u64) -> &[usize] {
        let (epoch, k) = (step / self.per_epoch, (step % self.per_epoch) as usize);
        if self.epoch != Some(epoch) {
            self.order.sort_unstable();
            Rng::new(self.seed)
                .fork(0xDA7A_0000 + epoch)
                .shuffle(&mut self.order);
            self.epoch = Some(epoch);
        }
        &self.order[k * self.batch..(k + 1) * self.batch]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_visits_every_image_once() {
        let ds = Dataset::new(
            (0..10).map(|i| i as f32).collect(),
            vec![0; 10],
            10,
            1,
            1,
            1,
        );
        let mut seen: Vec<usize> = (0..3)
            .flat_map(|s| ds.batch_indices(1, s, 3).unwrap())
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        assert_ne!(
            ds.batch_indices(1, 0, 3).unwrap(),
            ds.batch_indices(1, 3, 3).unwrap()
        );
        // The cached sampler gives the same batches, in any order of steps.
        let mut sampler = BatchSampler::new(&ds, 1, 3).unwrap();
        for s in [4, 0, 7, 3, 3, 1] {
            assert_eq!(
                sampler.indices(s),
                ds.batch_indices(1, s, 3).unwrap().as_slice()
            );
        }
        assert!(
            ds.batch_indices(1, 0, 11)
                .unwrap_err()
                .to_string()
                .contains("train.batch")
        );
    }
}
