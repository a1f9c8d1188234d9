//! The states a signature and a petition can be in, and how a signer's name may appear: each
//! an enum with its one string form, the word stored in the database and sent in JSON.

/// Where a signature stands. Only `Confirmed` signatures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureStatus {
    /// Signed, the confirmation email not yet answered.
    Pending,
    Confirmed,
    /// Held back by an abuse check: confirmable as usual, but counted only once an organizer
    /// accepts it.
    Suspect,
    /// Struck by an organizer.
    Invalidated,
    /// Taken back by the signer.
    Withdrawn,
}

impl SignatureStatus {
    /// Every status, in the order the moderation filter offers them.
    pub const ALL: [SignatureStatus; 5] = [
        SignatureStatus::Confirmed,
        SignatureStatus::Pending,
        SignatureStatus::Suspect,
        SignatureStatus::Invalidated,
        SignatureStatus::Withdrawn,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SignatureStatus::Pending => "pending",
            SignatureStatus::Confirmed => "confirmed",
            SignatureStatus::Suspect => "suspect",
            SignatureStatus::Invalidated => "invalidated",
            SignatureStatus::Withdrawn => "withdrawn",
        }
    }

    /// A status as stored or named in a request; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a petition stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PetitionStatus {
    Draft,
    Open,
    Closed,
    Delivered,
}

impl PetitionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PetitionStatus::Draft => "draft",
            PetitionStatus::Open => "open",
            PetitionStatus::Closed => "closed",
            PetitionStatus::Delivered => "delivered",
        }
    }

    /// A status named in a form or a request; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "draft" => Some(PetitionStatus::Draft),
            "open" => Some(PetitionStatus::Open),
            "closed" => Some(PetitionStatus::Closed),
            "delivered" => Some(PetitionStatus::Delivered),
            _ => None,
        }
    }

    pub fn from_db(value: &str) -> Self {
        match value {
            "draft" => PetitionStatus::Draft,
            "open" => PetitionStatus::Open,
            "delivered" => PetitionStatus::Delivered,
            // The column has a CHECK constraint; anything else can only mean "not accepting".
            _ => PetitionStatus::Closed,
        }
    }
}

/// How a signer's name may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disclosure {
    /// On the public list of signers, and in the delivery bundle.
    Public,
    /// In the delivery bundle for the addressees only, never on the site.
    #[default]
    Recipients,
    /// Counted and provable by receipt, never listed anywhere.
    CountOnly,
}

impl Disclosure {
    pub const ALL: [Disclosure; 3] = [
        Disclosure::Public,
        Disclosure::Recipients,
        Disclosure::CountOnly,
    ];

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        Self::ALL
            .into_iter()
            .find(|choice| choice.as_str() == raw.trim())
            .ok_or("Please choose how your name may appear: public, recipients or count_only.")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disclosure::Public => "public",
            Disclosure::Recipients => "recipients",
            Disclosure::CountOnly => "count_only",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_reads_back_from_its_word() {
        for status in SignatureStatus::ALL {
            assert_eq!(SignatureStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SignatureStatus::parse("Confirmed"), None);
        for choice in Disclosure::ALL {
            assert_eq!(Disclosure::parse(choice.as_str()), Ok(choice));
        }
    }
}
