//! The limits the rules compare with: the IHI runs table and the Anhøj limits.
//!
//! Every limit is decided by exact integer comparisons of sums of binomial coefficients, never
//! by floating-point probabilities, so a limit never flips because a probability that sits near
//! 2.5 % or 5 % was rounded the other way.

use num_bigint::BigUint;
use serde::Serialize;

/// The number of runs expected from random variation, for a number of useful points: fewer
/// than `lower` runs, or more than `upper`, is a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunsLimits {
    pub lower: u32,
    pub upper: u32,
}

/// The runs table the IHI rule reads, as (useful points, lower, upper): fewer runs than
/// `lower`, or more than `upper`, is a signal. These are the limits of Perla, Provost & Murray
/// 2011 (their Table 1, a reformatting of Swed & Eisenhart 1943) as the IHI teaches them.
///
/// What the numbers are checked against: the printed Table 1 itself could not be retrieved (it
/// is an image in the paper). Rows 10 to 15 are the table of IHI's course QI 104 as reproduced
/// in the course notes published at github.com/alioh/IHI-QI104 (`_posts/2020-04-08-L2 How to
/// Learn from Run Charts and Control Charts.md`); rows 10 to 40 are a second, independent
/// reproduction of "Swed and Eisenhart, as tabulated for run charts by Perla, Provost and
/// Murray" found in a public repository's run-chart code (the code search that found it does not
/// name the repository). The two agree on every row they share. The table is not one formula:
/// it is wider than the exact two-sided 5 % limits ([`exact_runs_limits`]) in 14 of its 31 rows
/// (20 useful points: 6-16, where the exact limits are 7-15, the figures of the research note),
/// and a test pins the rows where they differ. Above 40 useful points [`runs_limits`] uses the
/// exact computation, which gives the table's own row at 40 (15-27) and holds for any number of
/// points (a weekly measure kept for ten years has 520).
pub const RUNS_TABLE: [(u32, u32, u32); 31] = [
    (10, 3, 9),
    (11, 3, 10),
    (12, 3, 11),
    (13, 4, 11),
    (14, 4, 12),
    (15, 5, 12),
    (16, 5, 13),
    (17, 5, 13),
    (18, 6, 14),
    (19, 6, 15),
    (20, 6, 16),
    (21, 7, 16),
    (22, 7, 17),
    (23, 7, 17),
    (24, 8, 18),
    (25, 8, 18),
    (26, 9, 19),
    (27, 9, 20),
    (28, 10, 20),
    (29, 10, 21),
    (30, 11, 22),
    (31, 11, 22),
    (32, 11, 23),
    (33, 11, 24),
    (34, 12, 24),
    (35, 12, 25),
    (36, 13, 25),
    (37, 13, 26),
    (38, 14, 26),
    (39, 14, 27),
    (40, 15, 27),
];

/// The IHI runs limits for `useful` points: the published table from 10 to 40, the exact
/// computation above it, and `None` below 10, where the rule does not apply.
pub fn runs_limits(useful: u32) -> Option<RunsLimits> {
    if useful < 10 {
        return None;
    }
    match RUNS_TABLE.iter().find(|(n, _, _)| *n == useful) {
        Some(&(_, lower, upper)) => Some(RunsLimits { lower, upper }),
        None => exact_runs_limits(useful),
    }
}

/// Binomial coefficients C(m, 0), …, C(m, m) as exact integers.
fn binomial_row(m: u32) -> Vec<BigUint> {
    let mut row = Vec::with_capacity(m as usize + 1);
    let mut c = BigUint::from(1u32);
    row.push(c.clone());
    for j in 0..m {
        // C(m, j+1) = C(m, j)·(m−j)/(j+1); the division is exact.
        c = c * (m - j) / (j + 1);
        row.push(c.clone());
    }
    row
}

/// C(m, j) from a row of [`binomial_row`], 0 where j is out of range.
fn choose(row: &[BigUint], j: i64) -> BigUint {
    usize::try_from(j)
        .ok()
        .and_then(|j| row.get(j))
        .cloned()
        .unwrap_or_default()
}

/// Swed & Eisenhart's two-sided 5 % limits for the number of runs in `n` useful points, split
/// as evenly as the points allow (n₁ = ⌊n/2⌋ on one side, n₂ = ⌈n/2⌉ on the other, as the
/// median splits them).
///
/// With N = C(n, n₁) equally likely orders, the number of orders with r runs is
/// 2·C(n₁−1, k−1)·C(n₂−1, k−1) for r = 2k, and
/// C(n₁−1, k)·C(n₂−1, k−1) + C(n₁−1, k−1)·C(n₂−1, k) for r = 2k+1.
/// `lower` is the smallest r with P(R ≤ r) > 2.5 %, so that P(R < lower) ≤ 2.5 %; `upper`
/// is the largest r with P(R ≥ r) > 2.5 %, so that P(R > upper) ≤ 2.5 %.
/// `None` for fewer than 2 points, where there is no second side.
pub fn exact_runs_limits(n: u32) -> Option<RunsLimits> {
    if n < 2 {
        return None;
    }
    let n1 = n / 2;
    let n2 = n - n1;
    let row1 = binomial_row(n1 - 1);
    let row2 = binomial_row(n2 - 1);
    let orders = |r: u32| -> BigUint {
        let k = i64::from(r / 2);
        if r.is_multiple_of(2) {
            choose(&row1, k - 1) * choose(&row2, k - 1) * 2u32
        } else {
            choose(&row1, k) * choose(&row2, k - 1) + choose(&row1, k - 1) * choose(&row2, k)
        }
    };
    let counts: Vec<(u32, BigUint)> = (2..=n).map(|r| (r, orders(r))).collect();
    let total = binomial_row(n)
        .get(n1 as usize)
        .cloned()
        .unwrap_or_default();

    // P(R ≤ r) > 1/40  ⇔  40·(orders with at most r runs) > N
    let mut below = BigUint::default();
    let mut lower = n;
    for (r, count) in &counts {
        below += count;
        if &below * 40u32 > total {
            lower = *r;
            break;
        }
    }
    let mut above = BigUint::default();
    let mut upper = 2;
    for (r, count) in counts.iter().rev() {
        above += count;
        if &above * 40u32 > total {
            upper = *r;
            break;
        }
    }
    Some(RunsLimits { lower, upper })
}

/// The Anhøj limits for `useful` points, as qicharts2 computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AnhoejLimits {
    /// A run longer than this is a signal: round(log₂ n) + 3.
    pub longest_run_max: u32,
    /// Fewer crossings than this are a signal: qbinom(0.05, n − 1, 0.5).
    pub crossings_min: u32,
}

/// The Anhøj limits for `useful` points; `None` for none.
pub fn anhoej_limits(useful: u32) -> Option<AnhoejLimits> {
    Some(AnhoejLimits {
        longest_run_max: round_log2(useful)? + 3,
        crossings_min: binomial_half_quantile(1, 20, useful.saturating_sub(1)),
    })
}

/// round(log₂ n) in integers: with x = ⌊log₂ n⌋, log₂ n rounds up exactly when
/// n > 2^(x + ½), that is when n² > 2^(2x + 1). Equality cannot happen (2^(2x+1) is not a
/// square), so R's round-half-to-even never comes into it. `None` for 0.
pub fn round_log2(n: u32) -> Option<u32> {
    if n == 0 {
        return None;
    }
    let x = 31 - n.leading_zeros();
    let rounds_up = u128::from(n) * u128::from(n) > 1u128 << (2 * x + 1);
    Some(x + u32::from(rounds_up))
}

/// The p-quantile of Binomial(size, ½) as R's `qbinom(p, size, 0.5)` defines it: the smallest
/// k with P(X ≤ k) ≥ p, for p = `p_num / p_den`. Decided exactly:
/// P(X ≤ k) ≥ p  ⇔  p_den·Σᵢ≤ₖ C(size, i) ≥ p_num·2^size.
pub fn binomial_half_quantile(p_num: u32, p_den: u32, size: u32) -> u32 {
    let row = binomial_row(size);
    let target = (BigUint::from(1u32) << size) * p_num;
    let mut cumulative = BigUint::default();
    for (k, c) in (0..=size).zip(&row) {
        cumulative += c;
        if &cumulative * p_den >= target {
            return k;
        }
    }
    size
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_table_is_the_published_one_and_wider_than_the_exact_limits_where_they_differ() {
        let ns: Vec<u32> = RUNS_TABLE.iter().map(|row| row.0).collect();
        assert_eq!(ns, (10..=40).collect::<Vec<_>>());
        let mut differ = Vec::new();
        for &(n, lower, upper) in RUNS_TABLE.iter() {
            let exact = exact_runs_limits(n).unwrap();
            // The published limits never signal where the exact ones would not.
            assert!(lower <= exact.lower && upper >= exact.upper, "row {n}");
            if (lower, upper) != (exact.lower, exact.upper) {
                differ.push(n);
            }
        }
        assert_eq!(
            differ,
            vec![11, 12, 17, 20, 22, 23, 25, 27, 30, 32, 33, 35, 37, 39]
        );
    }

    #[test]
    fn the_published_rows_as_the_ihi_course_prints_them() {
        let expect = [
            (10, 3, 9),
            (11, 3, 10),
            (12, 3, 11),
            (13, 4, 11),
            (14, 4, 12),
            (15, 5, 12),
            (20, 6, 16),
            (30, 11, 22),
            (40, 15, 27),
        ];
        for (n, lower, upper) in expect {
            assert_eq!(runs_limits(n), Some(RunsLimits { lower, upper }), "{n}");
        }
    }

    #[test]
    fn the_research_notes_values_are_the_exact_limits() {
        let expect = [
            (10, 3, 9),
            (15, 5, 12),
            (20, 7, 15),
            (25, 9, 18),
            (30, 11, 21),
        ];
        for (n, lower, upper) in expect {
            assert_eq!(
                exact_runs_limits(n),
                Some(RunsLimits { lower, upper }),
                "{n}"
            );
        }
    }

    #[test]
    fn above_the_table_the_exact_limits_continue_its_last_row() {
        assert_eq!(runs_limits(40), exact_runs_limits(40));
        assert_eq!(runs_limits(41), exact_runs_limits(41));
    }

    #[test]
    fn the_runs_limits_for_ten_points_follow_from_the_distribution_by_hand() {
        // 5 above and 5 below: 252 orders; 2 have 2 runs and 8 have 3 runs, so
        // P(R ≤ 2) = 2/252 ≤ 2.5 % < P(R ≤ 3) = 10/252: fewer than 3 runs is a signal, and
        // by symmetry more than 9 is.
        assert_eq!(
            exact_runs_limits(10),
            Some(RunsLimits { lower: 3, upper: 9 })
        );
    }

    #[test]
    fn above_the_table_the_limits_are_computed_and_keep_widening() {
        let mut previous = runs_limits(40).unwrap();
        for n in 41..=200 {
            let limits = runs_limits(n).unwrap();
            assert!(limits.lower >= previous.lower && limits.upper >= previous.upper);
            assert!(limits.lower < n / 2 + 1 && limits.upper > n / 2);
            previous = limits;
        }
        // A weekly measure kept for ten years still gets limits.
        assert!(runs_limits(520).is_some());
    }

    #[test]
    fn below_ten_useful_points_there_are_no_runs_limits() {
        assert_eq!(runs_limits(9), None);
        assert_eq!(runs_limits(0), None);
    }

    #[test]
    fn the_anhoej_limits_match_the_research_notes_vectors() {
        let expect = [
            (10, 6, 2),
            (12, 7, 3),
            (20, 7, 6),
            (24, 8, 8),
            (30, 8, 10),
            (50, 9, 19),
        ];
        for (n, longest_run_max, crossings_min) in expect {
            assert_eq!(
                anhoej_limits(n),
                Some(AnhoejLimits {
                    longest_run_max,
                    crossings_min
                }),
                "{n}"
            );
        }
    }

    #[test]
    fn round_log2_rounds_at_the_square_root_of_two_between_powers() {
        // 2^3.5 ≈ 11.31: 11 rounds down to 3, 12 up to 4; 2^4.5 ≈ 22.6: 22 → 4, 23 → 5.
        assert_eq!(round_log2(11), Some(3));
        assert_eq!(round_log2(12), Some(4));
        assert_eq!(round_log2(22), Some(4));
        assert_eq!(round_log2(23), Some(5));
        assert_eq!(round_log2(1), Some(0));
        assert_eq!(round_log2(u32::MAX), Some(32));
        for n in 1..5000u32 {
            let float = (f64::from(n)).log2().round() as u32;
            assert_eq!(round_log2(n), Some(float), "{n}");
        }
    }

    #[test]
    fn the_binomial_quantile_is_the_smallest_k_whose_cdf_reaches_p() {
        // Binomial(9, ½): P(X ≤ 1) = 10/512 ≈ 1.95 %, P(X ≤ 2) = 46/512 ≈ 8.98 %.
        assert_eq!(binomial_half_quantile(1, 20, 9), 2);
        // The median of Binomial(2, ½): P(X ≤ 0) = ¼ < ½ ≤ P(X ≤ 1) = ¾.
        assert_eq!(binomial_half_quantile(1, 2, 2), 1);
        // P(X ≤ 0) = ½ exactly reaches p = ½: the CDF is compared with ≥, not >.
        assert_eq!(binomial_half_quantile(1, 2, 1), 0);
        // qbinom(p, 0, ½) is 0 for any p, as in R.
        assert_eq!(binomial_half_quantile(1, 20, 0), 0);
        // A p of 1 is the largest value.
        assert_eq!(binomial_half_quantile(1, 1, 7), 7);
    }

    #[test]
    fn the_binomial_quantile_works_for_hundreds_of_points() {
        // 519 = 520 weekly points − 1; the normal approximation puts the 5 % quantile near
        // 259.5 − 1.645·√(519)/2 ≈ 240.8.
        let k = binomial_half_quantile(1, 20, 519);
        assert!((239..=242).contains(&k), "{k}");
    }
}
