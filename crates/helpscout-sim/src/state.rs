//! The account state and the operations that keep it consistent: indexes, folder counts,
//! the ratings index and modified times move together with every change.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::dates::Ts;
use super::index::{ConvIndex, CustIndex, SortedVec};
use super::model::{
    ConvStatus, Conversation, Customer, FolderKind, Mailbox, PersonRef, RemovedConv, Tag, Team,
    User, Workflow,
};
use super::created::Created;

/// Id counters for new objects (always above every generated id).
#[derive(Clone, Debug, Default)]
pub struct IdCounters {
    pub conversation: i64,
    pub number: i64,
    pub thread: i64,
    pub customer: i64,
    pub entry: i64,
    pub attachment: i64,
}

#[derive(Debug)]
pub struct State {
    pub seed: u64,
    pub mailboxes: Vec<Mailbox>,
    pub users: Vec<User>,
    /// Current snapshot of each user, embedded in new conversations and threads.
    pub user_snaps: HashMap<i64, PersonRef>,
    pub teams: Vec<Team>,
    pub team_snaps: HashMap<i64, PersonRef>,
    pub workflows: Vec<Workflow>,
    pub tags: Vec<Tag>,
    /// Tags a write created. Simulated workflows never toggle them: a client's marker tag
    /// must mean what the client did.
    pub api_tags: HashSet<i64>,
    pub customers: HashMap<i64, Customer>,
    pub cust_idx: CustIndex,
    pub convs: HashMap<i64, Conversation>,
    pub conv_idx: ConvIndex,
    pub removed: BTreeMap<i64, RemovedConv>,
    /// (rating created, thread id) -> conversation id, for the happiness report.
    pub ratings: BTreeMap<(Ts, i64), i64>,
    pub ids: IdCounters,
    pub mutation_round: u64,
    /// What the API's writes did, in order.
    pub created: Created,
}

/// The folder count effects of one conversation: (folder id, total, active).
type Effects = Vec<(i64, i64, i64)>;

impl State {
    pub fn new(seed: u64) -> State {
        State {
            seed,
            mailboxes: Vec::new(),
            users: Vec::new(),
            user_snaps: HashMap::new(),
            teams: Vec::new(),
            team_snaps: HashMap::new(),
            workflows: Vec::new(),
            tags: Vec::new(),
            api_tags: HashSet::new(),
            customers: HashMap::new(),
            cust_idx: CustIndex::default(),
            convs: HashMap::new(),
            conv_idx: ConvIndex::default(),
            removed: BTreeMap::new(),
            ratings: BTreeMap::new(),
            ids: IdCounters::default(),
            mutation_round: 0,
            created: Created::default(),
        }
    }

    pub fn mailbox(&self, id: i64) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.id == id)
    }

    pub fn user(&self, id: i64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn team(&self, id: i64) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    pub fn tag(&self, id: i64) -> Option<&Tag> {
        self.tags.iter().find(|t| t.id == id)
    }

    /// The folder a conversation lives in, from its mailbox, status and assignee.
    pub fn folder_for(
        &self,
        mailbox_id: i64,
        status: ConvStatus,
        assignee: Option<&PersonRef>,
    ) -> i64 {
        let Some(mb) = self.mailbox(mailbox_id) else {
            return 0;
        };
        let find = |kind: FolderKind, user: i64| {
            mb.folders
                .iter()
                .find(|f| f.kind == kind && f.user_id == user)
                .map(|f| f.id)
                .unwrap_or(0)
        };
        match status {
            ConvStatus::Spam => find(FolderKind::Spam, 0),
            ConvStatus::Closed => find(FolderKind::Closed, 0),
            ConvStatus::Active | ConvStatus::Pending => match assignee {
                Some(p) => {
                    let mine = find(FolderKind::Mine, p.id);
                    if mine != 0 {
                        mine
                    } else {
                        find(FolderKind::Assigned, 0)
                    }
                }
                None => find(FolderKind::Unassigned, 0),
            },
        }
    }

    fn effects(&self, c: &Conversation) -> Effects {
        let active = i64::from(c.status == ConvStatus::Active);
        let mut v = vec![(c.folder_id, 1, active)];
        if c.assignee.is_some()
            && matches!(c.status, ConvStatus::Active | ConvStatus::Pending)
            && let Some(mb) = self.mailbox(c.mailbox_id)
            && let Some(f) = mb.folders.iter().find(|f| f.kind == FolderKind::Assigned)
            && f.id != c.folder_id
        {
            v.push((f.id, 1, active));
        }
        v
    }

    fn apply_effects(&mut self, mailbox_id: i64, effects: &Effects, sign: i64, now: Option<Ts>) {
        let Some(mb) = self.mailboxes.iter_mut().find(|m| m.id == mailbox_id) else {
            return;
        };
        for (fid, total, active) in effects {
            if let Some(f) = mb.folders.iter_mut().find(|f| f.id == *fid) {
                f.total_count += sign * total;
                f.active_count += sign * active;
                if let Some(now) = now {
                    f.updated_at = f.updated_at.max(now);
                }
            }
        }
    }

    fn index_ratings(&mut self, c: &Conversation, add: bool) {
        for t in &c.threads {
            if let Some(r) = &t.rating {
                if add {
                    self.ratings.insert((r.created_at, t.id), c.id);
                } else {
                    self.ratings.remove(&(r.created_at, t.id));
                }
            }
        }
    }

    /// Adds a conversation (generation, creation). `now` bumps the touched folders.
    pub fn insert_conv(&mut self, mut c: Conversation, now: Option<Ts>) {
        c.folder_id = self.folder_for(c.mailbox_id, c.status, c.assignee.as_ref());
        let eff = self.effects(&c);
        self.apply_effects(c.mailbox_id, &eff, 1, now);
        self.conv_idx.insert(&c);
        self.index_ratings(&c, true);
        self.convs.insert(c.id, c);
    }

    /// Removes a conversation from lists, indexes, counts and the report.
    pub fn take_conv(&mut self, id: i64, now: Ts) -> Option<Conversation> {
        let c = self.convs.remove(&id)?;
        let eff = self.effects(&c);
        self.apply_effects(c.mailbox_id, &eff, -1, Some(now));
        self.conv_idx.remove(&c);
        self.index_ratings(&c, false);
        Some(c)
    }

    /// Changes a conversation: `f` edits it, then the folder is re-derived, the hidden
    /// modified time is set to `now`, and indexes and counts follow.
    pub fn update_conv<R>(
        &mut self,
        id: i64,
        now: Ts,
        f: impl FnOnce(&mut Conversation, &State) -> R,
    ) -> Option<R> {
        let mut c = self.convs.remove(&id)?;
        let before = self.effects(&c);
        self.conv_idx.remove(&c);
        self.index_ratings(&c, false);
        let r = f(&mut c, self);
        c.folder_id = self.folder_for(c.mailbox_id, c.status, c.assignee.as_ref());
        c.modified = c.modified.max(now);
        let after = self.effects(&c);
        if before != after {
            self.apply_effects(c.mailbox_id, &before, -1, Some(now));
            self.apply_effects(c.mailbox_id, &after, 1, Some(now));
        }
        self.conv_idx.insert(&c);
        self.index_ratings(&c, true);
        self.convs.insert(id, c);
        Some(r)
    }

    pub fn insert_customer(&mut self, c: Customer) {
        self.cust_idx.created.insert(c.created_at, c.id);
        self.cust_idx.modified.insert(c.updated_at, c.id);
        self.customers.insert(c.id, c);
    }

    /// Changes a customer: `updatedAt` becomes `now` and the snapshot follows.
    pub fn update_customer<R>(
        &mut self,
        id: i64,
        now: Ts,
        f: impl FnOnce(&mut Customer) -> R,
    ) -> Option<R> {
        let c = self.customers.get_mut(&id)?;
        self.cust_idx.modified.remove(c.updated_at, c.id);
        let r = f(c);
        c.updated_at = c.updated_at.max(now);
        c.refresh_snap();
        self.cust_idx.modified.insert(c.updated_at, c.id);
        Some(r)
    }

    pub fn rebuild_indexes(&mut self) {
        self.conv_idx = ConvIndex::build(self.convs.values());
        self.cust_idx.created = SortedVec::from_unsorted(
            self.customers
                .values()
                .map(|c| (c.created_at, c.id))
                .collect(),
        );
        self.cust_idx.modified = SortedVec::from_unsorted(
            self.customers
                .values()
                .map(|c| (c.updated_at, c.id))
                .collect(),
        );
        self.ratings.clear();
        let mut ratings = BTreeMap::new();
        for c in self.convs.values() {
            for t in &c.threads {
                if let Some(r) = &t.rating {
                    ratings.insert((r.created_at, t.id), c.id);
                }
            }
        }
        self.ratings = ratings;
    }

    /// Recounts every folder from the conversations (used after generation).
    pub fn recount_folders(&mut self) {
        for mb in &mut self.mailboxes {
            for f in &mut mb.folders {
                f.total_count = 0;
                f.active_count = 0;
            }
        }
        let all: Vec<(i64, Effects)> = self
            .convs
            .values()
            .map(|c| (c.mailbox_id, self.effects(c)))
            .collect();
        for (mb, eff) in all {
            self.apply_effects(mb, &eff, 1, None);
        }
    }
}
