//! The Merkle tree over a delivery's commitments (RFC 6962's Merkle Tree Hash).
//! Ours because recipients re-derive the root from README's recipe: the leaf and node encoding
//! must be exactly this one, in a few lines anyone can audit.
//!
//! - The leaves are the commitments of the delivered signatures in the order of the rows of
//!   `signatures.csv` (signature id order), each as its 32 bytes (not its hex text).
//! - leaf hash = SHA-256(0x00 || commitment); node hash = SHA-256(0x01 || left || right).
//! - The tree is built level by level: neighbours are paired from the left; a node left
//!   without a partner at the end of a level is promoted unchanged to the next level. The
//!   last remaining hash is the root. This gives exactly RFC 6962's Merkle Tree Hash
//!   (section 2.1). A tree without leaves has the root SHA-256 of nothing.
//!
//! An inclusion proof for leaf `i` of a tree of `n` leaves lists, from the bottom up, the
//! partner of the path's node on each level where it has one (levels where it is promoted
//! contribute nothing). It reveals only hashes, which say nothing about other signers.

use sha2::{Digest, Sha256};

use crate::core::hex::Hash;

pub fn leaf_hash(commitment: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(commitment);
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of a tree without leaves.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Computes the root while leaves arrive one by one, keeping only one hash per level: the
/// roots of the complete subtrees seen so far, as in a binary counter.
#[derive(Debug, Default, Clone)]
pub struct RootBuilder {
    /// (number of leaves, subtree root), largest first.
    stack: Vec<(u64, Hash)>,
    leaves: u64,
}

impl RootBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, commitment: &Hash) {
        let mut size = 1;
        let mut hash = leaf_hash(commitment);
        while let Some(&(top_size, top_hash)) = self.stack.last() {
            if top_size != size {
                break;
            }
            self.stack.pop();
            hash = node_hash(&top_hash, &hash);
            size *= 2;
        }
        self.stack.push((size, hash));
        self.leaves += 1;
    }

    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// The root: the complete subtrees joined from the right, which is what promoting the
    /// unpaired node on each level amounts to.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        let Some((_, last)) = subtrees.next() else {
            return empty_root();
        };
        subtrees.fold(*last, |right, (_, left)| node_hash(left, &right))
    }
}

pub fn root(commitments: &[Hash]) -> Hash {
    let mut builder = RootBuilder::new();
    for commitment in commitments {
        builder.push(commitment);
    }
    builder.root()
}

/// Every level of a tree, kept to answer inclusion proofs quickly (about 64 bytes per leaf).
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` holds the leaf hashes, the last level the root alone (absent when empty).
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn new(commitments: &[Hash]) -> Self {
        let mut levels = vec![commitments.iter().map(leaf_hash).collect::<Vec<_>>()];
        while levels.last().is_some_and(|level| level.len() > 1) {
            let below = levels.last().expect("checked above");
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [promoted] => *promoted,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn root(&self) -> Hash {
        match self.levels.last().and_then(|top| top.first()) {
            Some(root) => *root,
            None => empty_root(),
        }
    }

    /// The inclusion proof of the leaf at `index`, if there is one.
    pub fn prove(&self, index: usize) -> Option<InclusionProof> {
        if index >= self.len() {
            return None;
        }
        let mut path = Vec::new();
        let mut position = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(partner) = level.get(position ^ 1) {
                path.push(*partner);
            }
            position /= 2;
        }
        Some(InclusionProof {
            leaf_index: index as u64,
            tree_size: self.len() as u64,
            path,
        })
    }
}

/// Evidence that one commitment is a leaf of a tree with a given root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The partners on the way up, bottom first.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// The root that `commitment` and this proof lead to, or `None` when the proof does not
    /// fit its own index and size (too few or too many hashes).
    pub fn root_for(&self, commitment: &Hash) -> Option<Hash> {
        if self.leaf_index >= self.tree_size {
            return None;
        }
        let mut hash = leaf_hash(commitment);
        let mut position = self.leaf_index;
        let mut size = self.tree_size;
        let mut path = self.path.iter();
        while size > 1 {
            if position % 2 == 1 {
                hash = node_hash(path.next()?, &hash);
            } else if position + 1 < size {
                hash = node_hash(&hash, path.next()?);
            }
            position /= 2;
            size = size.div_ceil(2);
        }
        path.next().is_none().then_some(hash)
    }

    /// True when `commitment` is the leaf this proof speaks of in the tree with `root`.
    pub fn verify(&self, commitment: &Hash, root: &Hash) -> bool {
        self.root_for(commitment)
            .is_some_and(|found| &found == root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hex::sha256;

    fn commitments(n: usize) -> Vec<Hash> {
        (0..n).map(|i| sha256(&i.to_be_bytes())).collect()
    }

    /// RFC 6962's recursive definition, to check the level-by-level construction against.
    fn rfc6962(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&rfc6962(&leaves[..k]), &rfc6962(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_agree_with_rfc_6962_for_every_small_size() {
        for n in 0..=70 {
            let leaves = commitments(n);
            let tree = MerkleTree::new(&leaves);
            assert_eq!(tree.root(), rfc6962(&leaves), "size {n}");
            assert_eq!(root(&leaves), tree.root(), "streaming, size {n}");
            assert_eq!(tree.len(), n);
        }
    }

    #[test]
    fn small_trees_by_hand() {
        let [a, b, c] = [sha256(b"a"), sha256(b"b"), sha256(b"c")];
        assert_eq!(root(&[]), sha256(b""));
        assert_eq!(root(&[a]), leaf_hash(&a));
        let ab = node_hash(&leaf_hash(&a), &leaf_hash(&b));
        assert_eq!(root(&[a, b]), ab);
        // The odd leaf is promoted, not paired with itself.
        assert_eq!(root(&[a, b, c]), node_hash(&ab, &leaf_hash(&c)));
        assert_ne!(leaf_hash(&a), a, "leaves are hashed with their 0x00 prefix");
    }

    #[test]
    fn every_member_has_a_proof_that_verifies() {
        for n in [1, 2, 3, 5, 7, 8, 9, 13, 64, 65] {
            let leaves = commitments(n);
            let tree = MerkleTree::new(&leaves);
            let root = tree.root();
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = tree.prove(i).unwrap();
                assert!(proof.verify(leaf, &root), "leaf {i} of {n}");
                assert!(proof.path.len() <= 7);
                if n > 1 {
                    // The proof is for this leaf only: another leaf with it fails.
                    let other = &leaves[(i + 1) % n];
                    assert!(!proof.verify(other, &root), "leaf {i} of {n}");
                }
            }
            assert!(tree.prove(n).is_none());
        }
        // A single leaf: an empty path, and the root is the leaf's hash.
        let tree = MerkleTree::new(&commitments(1));
        assert!(tree.prove(0).unwrap().path.is_empty());
    }

    #[test]
    fn non_members_and_bent_proofs_fail() {
        let leaves = commitments(11);
        let tree = MerkleTree::new(&leaves);
        let root = tree.root();
        let stranger = sha256(b"not a signer");
        for i in 0..leaves.len() {
            assert!(!tree.prove(i).unwrap().verify(&stranger, &root));
        }
        let good = tree.prove(6).unwrap();
        let mut wrong_index = good.clone();
        wrong_index.leaf_index = 7;
        assert!(!wrong_index.verify(&leaves[6], &root));
        // A size that changes the leaf's way up fails. (One that keeps it, such as 12 here,
        // leads to the same root: the size is checked against the manifest's leaf count.)
        let mut wrong_size = good.clone();
        wrong_size.tree_size = 7;
        assert!(!wrong_size.verify(&leaves[6], &root));
        let mut short = good.clone();
        short.path.pop();
        assert!(short.root_for(&leaves[6]).is_none());
        let mut long = good.clone();
        long.path.push(stranger);
        assert!(long.root_for(&leaves[6]).is_none());
        let mut flipped = good.clone();
        flipped.path[0][0] ^= 1;
        assert!(!flipped.verify(&leaves[6], &root));
        let mut out_of_range = good;
        out_of_range.leaf_index = 11;
        assert!(out_of_range.root_for(&leaves[6]).is_none());
        assert!(!tree
            .prove(0)
            .unwrap()
            .verify(&leaves[0], &sha256(b"other root")));
    }
}
