//! The progressive-growing schedule of Progressive GAN (the official code's `TrainingSchedule`),
//! in images seen: each resolution is trained for `stabilise_kimg` thousand images, then the next
//! one fades in over `transition_kimg`, until the final resolution, which stays. The official
//! "level of detail" `lod` counts levels below the final one; a fractional `lod` is a fade-in.
//! Everything here is a pure function of the images seen, so a resumed run is at the same
//! resolution and alpha as a straight one.

use super::pggan::Level;

#[derive(Clone, Debug, PartialEq)]
pub struct Growth {
    /// Level training starts at (`log2(start_resolution) - 2`).
    pub start_level: usize,
    /// Level of the final resolution.
    pub final_level: usize,
    pub stabilise_kimg: f64,
    pub transition_kimg: f64,
}

impl Growth {
    /// Growing from `start_resolution` to `resolution`, each level trained for
    /// `stabilise_kimg` and faded in over `transition_kimg`.
    pub fn new(
        start_resolution: usize,
        resolution: usize,
        stabilise_kimg: f64,
        transition_kimg: f64,
    ) -> Self {
        Growth {
            start_level: start_resolution.trailing_zeros() as usize - 2,
            final_level: resolution.trailing_zeros() as usize - 2,
            stabilise_kimg,
            transition_kimg,
        }
    }

    /// The official `lod` after `images` images: levels below the final one, fractional while a
    /// level fades in.
    pub fn lod(&self, images: u64) -> f64 {
        let kimg = images as f64 / 1000.0;
        let phase = self.stabilise_kimg + self.transition_kimg;
        let (index, into) = if phase > 0.0 {
            let i = (kimg / phase).floor();
            (i, kimg - i * phase)
        } else {
            (0.0, 0.0)
        };
        let mut lod = (self.final_level - self.start_level) as f64 - index;
        if self.transition_kimg > 0.0 {
            lod -= (into - self.stabilise_kimg).max(0.0) / self.transition_kimg;
        }
        lod.max(0.0)
    }

    /// The level and alpha of a `lod`: during a fade-in the level being added.
    pub fn level_of(&self, lod: f64) -> Level {
        let below = lod.floor();
        Level {
            level: self.final_level - below as usize,
            alpha: 1.0 - (lod - below),
        }
    }

    pub fn level(&self, images: u64) -> Level {
        self.level_of(self.lod(images))
    }

    /// Whether going from `prev` to `lod` starts or ends a fade-in, where the paper resets the
    /// optimizers' moments (the official `reset_opt_for_new_lod`).
    pub fn resets_optimizers(prev: Option<f64>, lod: f64) -> bool {
        prev.is_none_or(|p| p.floor() != lod.floor() || p.ceil() != lod.ceil())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Growth {
        // 4x4 to 32x32, 600 + 600 kimg: the official default per phase.
        Growth {
            start_level: 0,
            final_level: 3,
            stabilise_kimg: 600.0,
            transition_kimg: 600.0,
        }
    }

    #[test]
    fn levels_follow_the_official_schedule() {
        let g = schedule();
        let at = |kimg: f64| g.level((kimg * 1000.0) as u64);
        assert_eq!(at(0.0), Level::stable(0));
        assert_eq!(at(599.0), Level::stable(0));
        // A quarter of the way into the first fade-in: 8x8 at alpha 0.25.
        let l = at(750.0);
        assert_eq!((l.level, l.resolution()), (1, 8));
        assert!((l.alpha - 0.25).abs() < 1e-12);
        assert_eq!(at(1200.0), Level::stable(1));
        assert_eq!(at(1900.0).resolution(), 16);
        assert!((at(1950.0).alpha - 0.25).abs() < 1e-12);
        // The final resolution stays, however long the run.
        assert_eq!(at(3600.0), Level::stable(3));
        assert_eq!(at(100_000.0), Level::stable(3));
        // Starting at 8x8 skips the 4x4 phase.
        let from8 = Growth {
            start_level: 1,
            ..schedule()
        };
        assert_eq!(from8.level(0), Level::stable(1));
    }

    #[test]
    fn optimizers_reset_when_a_fade_in_starts_and_ends() {
        let g = schedule();
        let lod = |kimg: f64| g.lod((kimg * 1000.0) as u64);
        assert!(Growth::resets_optimizers(None, lod(0.0)));
        assert!(!Growth::resets_optimizers(Some(lod(100.0)), lod(200.0)));
        assert!(Growth::resets_optimizers(Some(lod(599.0)), lod(601.0)));
        assert!(!Growth::resets_optimizers(Some(lod(700.0)), lod(800.0)));
        assert!(Growth::resets_optimizers(Some(lod(1199.0)), lod(1201.0)));
    }
}
