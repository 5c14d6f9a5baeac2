//! Lists of ids a request names, parsed once: each id named once, between one and a maximum of
//! them. A job's [`ImageSelection`] is either the whole library or such a list.

use std::collections::HashSet;

use uuid::Uuid;

/// Most images one job may name in `image_ids`.
pub const MAX_IMAGES_PER_JOB: usize = 100_000;

/// Most images a whole-library job may cover (its items are written and released in chunks, so
/// the bound is only what the job's counters hold comfortably).
pub const MAX_LIBRARY_IMAGES_PER_JOB: usize = 10_000_000;

/// Ids in the order given, each named once, at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdList(Vec<Uuid>);

/// One thing wrong with a list of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdListProblem {
    /// No id at all.
    Empty,
    /// More ids than allowed.
    TooMany { max: usize },
    /// The id at `index` was named before.
    Repeated { index: usize, id: Uuid },
}

/// Every problem of a list of ids: the size problem (if any) first, then each repetition in
/// list order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct IdListError(pub Vec<IdListProblem>);

fn describe(problems: &[IdListProblem]) -> String {
    problems
        .iter()
        .map(|problem| match problem {
            IdListProblem::Empty => "no id".to_owned(),
            IdListProblem::TooMany { max } => format!("more than {max} ids"),
            IdListProblem::Repeated { index, id } => format!("id {id} repeated at {index}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl IdList {
    /// Accepts 1 to `max` ids, each named once.
    pub fn parse(ids: Vec<Uuid>, max: usize) -> Result<Self, IdListError> {
        let mut problems = Vec::new();
        if ids.is_empty() {
            problems.push(IdListProblem::Empty);
        } else if ids.len() > max {
            problems.push(IdListProblem::TooMany { max });
        }
        let mut seen = HashSet::with_capacity(ids.len());
        for (index, id) in ids.iter().enumerate() {
            if !seen.insert(id) {
                problems.push(IdListProblem::Repeated { index, id: *id });
            }
        }
        if problems.is_empty() {
            Ok(Self(ids))
        } else {
            Err(IdListError(problems))
        }
    }

    pub fn as_slice(&self) -> &[Uuid] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Uuid> {
        self.0
    }
}

/// The images of a library a job runs over: the whole library, or 1 to
/// [`MAX_IMAGES_PER_JOB`] of its images, each named once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSelection(Option<IdList>);

impl ImageSelection {
    /// Every image of the library (the store refuses a library with more than
    /// [`MAX_IMAGES_PER_JOB`]).
    pub const ALL: Self = Self(None);

    /// A job request's `image_ids`: absent means the whole library.
    pub fn parse(image_ids: Option<Vec<Uuid>>) -> Result<Self, IdListError> {
        match image_ids {
            None => Ok(Self::ALL),
            Some(ids) => IdList::parse(ids, MAX_IMAGES_PER_JOB).and_then(Self::only),
        }
    }

    /// These images (a list parsed against a request's own maximum), if a job may cover them.
    pub fn only(ids: IdList) -> Result<Self, IdListError> {
        if ids.as_slice().len() > MAX_IMAGES_PER_JOB {
            return Err(IdListError(vec![IdListProblem::TooMany {
                max: MAX_IMAGES_PER_JOB,
            }]));
        }
        Ok(Self(Some(ids)))
    }

    /// The ids named, or `None` for the whole library.
    pub fn ids(&self) -> Option<&[Uuid]> {
        self.0.as_ref().map(IdList::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn a_list_of_distinct_ids_within_the_maximum_is_kept_in_order() {
        let list = IdList::parse(vec![Uuid::from_u128(2), Uuid::from_u128(1)], 2);
        assert_eq!(
            list.map(IdList::into_vec),
            Ok(vec![Uuid::from_u128(2), Uuid::from_u128(1)])
        );
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert_eq!(
            IdList::parse(Vec::new(), 3),
            Err(IdListError(vec![IdListProblem::Empty]))
        );
    }

    #[test]
    fn the_size_problem_comes_before_every_repetition() {
        let mut list = ids(3);
        list.push(Uuid::from_u128(1));
        list.push(Uuid::from_u128(3));
        assert_eq!(
            IdList::parse(list, 3),
            Err(IdListError(vec![
                IdListProblem::TooMany { max: 3 },
                IdListProblem::Repeated {
                    index: 3,
                    id: Uuid::from_u128(1)
                },
                IdListProblem::Repeated {
                    index: 4,
                    id: Uuid::from_u128(3)
                },
            ]))
        );
    }

    #[test]
    fn absent_image_ids_select_the_whole_library() {
        assert_eq!(ImageSelection::parse(None), Ok(ImageSelection::ALL));
        assert_eq!(ImageSelection::ALL.ids(), None);
        let some = ImageSelection::parse(Some(ids(2))).map(|s| s.ids().map(<[Uuid]>::len));
        assert_eq!(some, Ok(Some(2)));
    }

    #[test]
    fn a_job_names_at_most_the_maximum_of_images() {
        let too_many = ImageSelection::parse(Some(ids(MAX_IMAGES_PER_JOB as u128 + 1)));
        assert_eq!(
            too_many,
            Err(IdListError(vec![IdListProblem::TooMany {
                max: MAX_IMAGES_PER_JOB
            }]))
        );
    }
}
