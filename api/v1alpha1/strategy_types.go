/*
Copyright 2026 The strategy-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PersistenceBackend names where a strategy keeps its crash state.
// +kubebuilder:validation:Enum=File;ConfigMap;StrategyState;Redis;PostgreSQL;MongoDB
type PersistenceBackend string

const (
	// BackendFile keeps state as JSON files on a PersistentVolumeClaim mounted into the strategy pod.
	BackendFile PersistenceBackend = "File"
	// BackendConfigMap keeps state in ConfigMaps, one per store context.
	BackendConfigMap PersistenceBackend = "ConfigMap"
	// BackendStrategyState keeps state in StrategyState objects, one per strategy and symbol,
	// readable with `kubectl get strategystates`.
	BackendStrategyState PersistenceBackend = "StrategyState"
	// BackendRedis keeps state in a Redis database: a hash per store.
	BackendRedis PersistenceBackend = "Redis"
	// BackendPostgreSQL keeps state in a PostgreSQL database, in the tables of backtest-kit's
	// own PostgreSQL adapter (signal-items, risk-items, …), so a bot on that adapter reads it.
	BackendPostgreSQL PersistenceBackend = "PostgreSQL"
	// BackendMongoDB keeps state in a MongoDB database, in the collections of backtest-kit's
	// own MongoDB package (signal-items, risk-items, …), so a bot on that package reads it.
	BackendMongoDB PersistenceBackend = "MongoDB"
)

// DefaultBackend is spec.persistence.backend when unset.
const DefaultBackend = BackendStrategyState

// ConnectionSecretLabel must be "true" on a Secret a Strategy names for its database URL:
// whoever may label Secrets opts each one in, so that a user who may edit Strategies cannot
// have the operator hand any other Secret of the namespace to a runner.
const ConnectionSecretLabel = "trading.strategyops.dev/connection"

// SecretKeyRef names one key of a Secret in the Strategy's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +required
	Key string `json:"key"`
}

// DatabasePersistence configures a database backend.
type DatabasePersistence struct {
	// urlSecretRef names the Secret key that holds the connection URL (redis://…,
	// postgres://… or mongodb://…, credentials included). The Secret must carry the label
	// trading.strategyops.dev/connection: "true". The runner gets the URL from the Secret in
	// its environment, never in its arguments.
	// +required
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`
}

// StoreCache configures the runner's read-through, write-through cache in front of a
// database backend. Every cached read still asks the database for the key's revision (one
// small round trip), so the cache never serves a value the database no longer holds; what
// it saves is the transfer of the value.
type StoreCache struct {
	// maxEntries is the most keys the cache holds for each store (a store per kind and
	// symbol; 10000 when unset).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxEntries *int32 `json:"maxEntries,omitempty"`

	// maxBytes is the most bytes of values the cache holds for each store (64Mi when unset).
	// +kubebuilder:validation:XValidation:rule="quantity(self).isGreaterThan(quantity('0'))",message="maxBytes must be positive"
	// +optional
	MaxBytes *resource.Quantity `json:"maxBytes,omitempty"`
}

// StoreReplica is a database the runner copies the strategy's state to, asynchronously,
// after the backend acknowledged each write: for analytics or disaster recovery. A replica
// is never read by the runner; it is rebuilt from the backend whenever a runner starts, and
// whenever its queue overflows.
// +kubebuilder:validation:XValidation:rule="self.backend in ['Redis', 'PostgreSQL', 'MongoDB']",message="a replica's backend must be Redis, PostgreSQL or MongoDB"
type StoreReplica struct {
	// name of the replica, in the runner's replication metrics and logs.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`
	// +required
	Name string `json:"name"`

	// backend of the replica: Redis, PostgreSQL or MongoDB.
	// +required
	Backend PersistenceBackend `json:"backend"`

	// urlSecretRef names the Secret key that holds the replica's connection URL; the Secret
	// must carry the label trading.strategyops.dev/connection: "true", as the backend's.
	// +required
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`

	// queueSize is the most changes waiting for the replica (1024 when unset); beyond it
	// the replica is rebuilt from the backend.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	QueueSize *int32 `json:"queueSize,omitempty"`
}

// RetentionPolicy says what happens to a strategy's persisted state when the Strategy is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type RetentionPolicy string

const (
	// RetainState keeps the state objects (they carry no owner reference) so that a Strategy
	// created again under the same name resumes its open signals.
	RetainState RetentionPolicy = "Retain"
	// DeleteState removes the state once the strategy pod is gone.
	DeleteState RetentionPolicy = "Delete"
)

// FilePersistence configures the File backend's volume.
type FilePersistence struct {
	// size of the PersistentVolumeClaim that holds the state files.
	// +kubebuilder:default="1Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the PersistentVolumeClaim; the cluster default when empty.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// PersistenceSpec selects and configures the persistence backend.
// +kubebuilder:validation:XValidation:rule="!has(self.file) || self.backend == 'File'",message="persistence.file may only be set when persistence.backend is File"
// +kubebuilder:validation:XValidation:rule="has(self.redis) == (has(self.backend) && self.backend == 'Redis')",message="persistence.redis is required when persistence.backend is Redis, and allowed only then"
// +kubebuilder:validation:XValidation:rule="has(self.postgresql) == (has(self.backend) && self.backend == 'PostgreSQL')",message="persistence.postgresql is required when persistence.backend is PostgreSQL, and allowed only then"
// +kubebuilder:validation:XValidation:rule="has(self.mongodb) == (has(self.backend) && self.backend == 'MongoDB')",message="persistence.mongodb is required when persistence.backend is MongoDB, and allowed only then"
// +kubebuilder:validation:XValidation:rule="!has(self.cache) && !has(self.replicas) || has(self.backend) && self.backend in ['Redis', 'PostgreSQL', 'MongoDB']",message="persistence.cache and persistence.replicas need a database backend (Redis, PostgreSQL or MongoDB)"
type PersistenceSpec struct {
	// backend that stores the strategy's signals, schedule, snapshot, risk, partial and breakeven state.
	// +kubebuilder:default=StrategyState
	// +optional
	Backend PersistenceBackend `json:"backend,omitempty"`

	// file configures the File backend.
	// +optional
	File *FilePersistence `json:"file,omitempty"`

	// redis configures the Redis backend.
	// +optional
	Redis *DatabasePersistence `json:"redis,omitempty"`

	// postgresql configures the PostgreSQL backend.
	// +optional
	PostgreSQL *DatabasePersistence `json:"postgresql,omitempty"`

	// mongodb configures the MongoDB backend.
	// +optional
	MongoDB *DatabasePersistence `json:"mongodb,omitempty"`

	// cache puts a read-through, write-through cache in the runner in front of a database
	// backend.
	// +optional
	Cache *StoreCache `json:"cache,omitempty"`

	// replicas are databases the runner copies the state to asynchronously.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=3
	// +optional
	Replicas []StoreReplica `json:"replicas,omitempty"`
}

// Database is the configuration of the database backend b, nil when it has none.
func (p PersistenceSpec) Database(b PersistenceBackend) *DatabasePersistence {
	switch b {
	case BackendRedis:
		return p.Redis
	case BackendPostgreSQL:
		return p.PostgreSQL
	case BackendMongoDB:
		return p.MongoDB
	}
	return nil
}

// SetDatabase sets the configuration of the database backend b (Database reads it back);
// a backend that is no database takes none.
func (p *PersistenceSpec) SetDatabase(b PersistenceBackend, db *DatabasePersistence) {
	switch b {
	case BackendRedis:
		p.Redis = db
	case BackendPostgreSQL:
		p.PostgreSQL = db
	case BackendMongoDB:
		p.MongoDB = db
	}
}

// HistorySpec bounds the signal ledger a strategy keeps, on every backend.
type HistorySpec struct {
	// liveEntries is how many signals each symbol's live ledger holds before the oldest
	// finished ones (down to half) move into its archive: sealed, numbered ConfigMaps on the
	// Kubernetes backends, an archive store on the others (the runner moves them on File).
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=500
	// +optional
	LiveEntries int32 `json:"liveEntries,omitempty"`

	// archivedEntries is how many finished signals each symbol's archives keep: past it the
	// oldest are deleted, each time archiving moves more signals into the archive.
	// Defaults to 10000.
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	ArchivedEntries int32 `json:"archivedEntries,omitempty"`

	// maxAge, when set, deletes archived signals that ended longer ago than that (by the
	// wall clock), each time archiving moves more signals into the archive.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="maxAge must be a positive duration, such as 720h"
	// +optional
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`
}

// DefaultLiveEntries is spec.history.liveEntries when unset.
const DefaultLiveEntries = 100

// DefaultArchivedEntries is spec.history.archivedEntries when unset.
const DefaultArchivedEntries = 10000

// StrategySpec is what to run: which strategy, on which exchange and symbols, and where its state lives.
// +kubebuilder:validation:XValidation:rule="!has(self.command) || has(self.image)",message="spec.command needs spec.image: an image of yours with your runtime and the runner at /usr/local/bin/runner"
// +kubebuilder:validation:XValidation:rule="!has(self.args) || !self.args.exists(a, a == '--')",message="spec.args cannot hold --, which would end the runner's flags"
// +kubebuilder:validation:XValidation:rule="!has(self.args) || !self.args.exists(a, a.startsWith('--risk-profiles') || a.startsWith('-risk-profiles'))",message="spec.args cannot set --risk-profiles: list the profiles in spec.riskProfiles, where the operator claims them"
type StrategySpec struct {
	// strategyName is the strategy's name inside its persisted state. Defaults to the object's name.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	StrategyName string `json:"strategyName,omitempty"`

	// exchangeName names the exchange the strategy trades on.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +required
	ExchangeName string `json:"exchangeName"`

	// symbols the strategy trades, each at most once.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`
	// +listType=set
	// +required
	Symbols []string `json:"symbols"`

	// riskProfiles are the risk profiles (backtest-kit's riskName, as a bot names them in
	// addRiskSchema) whose positions the strategy writes, on its exchange; the operator
	// provisions each and grants the runner exactly these. Default: one, named after the
	// strategy (its strategyName). A profile is one state, with one owner: a Strategy
	// whose profile another Strategy of the namespace already holds on the same exchange
	// runs nothing until that one lets it go. The built-in strategies keep their
	// positions under the first.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	RiskProfiles []string `json:"riskProfiles,omitempty"`

	// image of the strategy runner; the operator's --runner-image when empty.
	// +optional
	Image string `json:"image,omitempty"`

	// args appended to the runner's command line (for example the built-in strategy to run).
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=4096
	// +optional
	Args []string `json:"args,omitempty"`

	// command is a process of your own, in any language, to run as the strategy under
	// `runner exec`: the runner takes the Lease, serves the strategy's state to the process on
	// a Unix socket (STRATEGYOPS_STATE_SOCKET) and stops it when the Lease is lost. The image
	// must hold the runner at /usr/local/bin/runner (see the README's Dockerfile lines).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Command []string `json:"command,omitempty"`

	// env added to the runner container. A variable the operator or the kubelet sets, or
	// the runner reads, is refused: it could point the runner, and its ServiceAccount token,
	// elsewhere. Those are POD_IP, POD_NAME, POD_NAMESPACE, POD_UID, STORE_URL,
	// STORE_REPLICA_*, KUBECONFIG, KUBERNETES_*, STRATEGYOPS_*, and the runner's flag
	// defaults BACKEND, DATA_DIR, DRAIN_SYMBOLS, EXCHANGE_NAME, LEASE_NAME, STRATEGY_NAME,
	// STRATEGY_OBJECT and SYMBOLS.
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:XValidation:rule="!(self.name in ['POD_IP', 'POD_NAME', 'POD_NAMESPACE', 'POD_UID', 'STORE_URL', 'KUBECONFIG', 'BACKEND', 'DATA_DIR', 'DRAIN_SYMBOLS', 'EXCHANGE_NAME', 'LEASE_NAME', 'STRATEGY_NAME', 'STRATEGY_OBJECT', 'SYMBOLS']) && !self.name.startsWith('STORE_REPLICA_') && !self.name.startsWith('KUBERNETES_') && !self.name.startsWith('STRATEGYOPS_')",messageExpression="self.name + ' is set for the runner by the operator or the kubelet, or read by the runner: a Strategy may not set it'"
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// resources of the runner container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// persistence selects the backend that keeps the strategy's crash state.
	// +kubebuilder:default={backend: StrategyState}
	// +optional
	Persistence PersistenceSpec `json:"persistence,omitzero"`

	// history bounds the signal ledger: the live one, and its archives.
	// +kubebuilder:default={liveEntries: 100}
	// +optional
	History HistorySpec `json:"history,omitzero"`

	// retention says whether the persisted state outlives the Strategy.
	// +kubebuilder:default=Retain
	// +optional
	Retention RetentionPolicy `json:"retention,omitempty"`

	// suspend stops the strategy pod and keeps its state.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// updatePolicy says when a spec change reaches the running strategy: Immediate (the
	// runner restarts with it at once) or WhenFlat (it waits until no signal is open or
	// scheduled, shown by the UpToDate condition). Either way a symbol removed while it
	// has a signal is drained, and a new strategyName or exchangeName is refused while the
	// current state has signals.
	// +kubebuilder:default=Immediate
	// +optional
	UpdatePolicy UpdatePolicy `json:"updatePolicy,omitempty"`

	// quietAfter is how much market time a symbol may go with no signal and no proposal
	// before the Strategy says it is not trading (Trading=False, reason NoProposals); 0s
	// never does. Refused proposals and a market feed that stopped are told whatever it is.
	// (The default is written as Go writes a duration, so that a client's round trip of an
	// unchanged spec changes nothing.)
	// +kubebuilder:default="24h0m0s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="quietAfter must not be negative"
	// +optional
	QuietAfter *metav1.Duration `json:"quietAfter,omitempty"`
}

// UpdatePolicy says when a spec change reaches the running strategy.
// +kubebuilder:validation:Enum=Immediate;WhenFlat
type UpdatePolicy string

// Update policies.
const (
	UpdateImmediate UpdatePolicy = "Immediate"
	UpdateWhenFlat  UpdatePolicy = "WhenFlat"
)

// StrategyPhase is a one-word summary of a Strategy for people; conditions carry the detail.
// +kubebuilder:validation:Enum=Pending;Running;Suspended;Failed;Terminating
type StrategyPhase string

// Strategy phases.
const (
	StrategyPending     StrategyPhase = "Pending"
	StrategyRunning     StrategyPhase = "Running"
	StrategySuspended   StrategyPhase = "Suspended"
	StrategyFailed      StrategyPhase = "Failed"
	StrategyTerminating StrategyPhase = "Terminating"
)

// Condition types of a Strategy.
const (
	// ConditionReady is True when the strategy pod runs with its persistence in place.
	ConditionReady = "Ready"
	// ConditionPersistenceReady is True when the selected backend is valid and its storage exists.
	ConditionPersistenceReady = "PersistenceReady"
	// ConditionDegraded is True when something needs a person's attention.
	ConditionDegraded = "Degraded"
	// ConditionStorageNearLimit is True while a store object of the strategy is past
	// StorageWarnPercent of the API server's size limit, before any write fails.
	ConditionStorageNearLimit = "StorageNearLimit"
	// ConditionUpToDate is True when the runner runs the latest spec; False while a change
	// waits (updatePolicy WhenFlat) or is refused (a new state identity with signals open).
	ConditionUpToDate = "UpToDate"
	// ConditionDraining is True while removed symbols keep being watched until their
	// signals close.
	ConditionDraining = "Draining"
	// ConditionStoreDurable says, on a database backend, whether a write the database
	// acknowledged survives a crash of the database server (its persistence settings).
	ConditionStoreDurable = "StoreDurable"
	// ConditionTrading says whether the runner trades, as it tells: False with the reason
	// (its proposals are refused, no candle comes, nothing is proposed for spec.quietAfter,
	// every symbol drained) and its words. Absent while no runner has told (a runner exec
	// process, whose own code trades, never does).
	ConditionTrading = "Trading"
)

// StorageWarnPercent is how full a store object may get before StorageNearLimit is True.
const StorageWarnPercent = 75

// StrategyStatus is the observed state of a Strategy.
type StrategyStatus struct {
	// conditions: Ready, PersistenceReady, Degraded and StorageNearLimit.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the conditions.
	// +optional
	Phase StrategyPhase `json:"phase,omitempty"`

	// podName of the strategy pod, when one exists.
	// +optional
	PodName string `json:"podName,omitempty"`

	// activeBackend is the backend the state currently lives in (it differs from
	// spec.persistence.backend while a switch is in progress or refused).
	// +optional
	ActiveBackend PersistenceBackend `json:"activeBackend,omitempty"`

	// staleBackend is the backend the state was moved away from, whose objects still hold
	// the old copy until the operator removes them (after the move is recorded here).
	// +optional
	StaleBackend PersistenceBackend `json:"staleBackend,omitempty"`

	// activeDatabase is the Secret key of the database the state lives in, when
	// activeBackend is a database: a switch away (or to another Secret) reads the state
	// from it after the spec names another.
	// +optional
	ActiveDatabase *SecretKeyRef `json:"activeDatabase,omitempty"`

	// staleDatabase is the Secret key of the database of staleBackend, when it is one.
	// +optional
	StaleDatabase *SecretKeyRef `json:"staleDatabase,omitempty"`

	// openSignals is the number of active signals found in the store; absent when the
	// operator cannot read the store (File: the state is on the strategy's volume).
	// +optional
	OpenSignals *int32 `json:"openSignals,omitempty"`

	// applied is the state the runner works on: its identity and symbols, which differ
	// from the spec while a change waits or is refused, or removed symbols drain.
	// +optional
	Applied *AppliedState `json:"applied,omitempty"`

	// lastClosedSignal is the signal closed most recently, on any symbol, with its result
	// as backtest-kit computes it; absent until one closes, or when the operator cannot
	// read the store (File).
	// +optional
	LastClosedSignal *ClosedSignal `json:"lastClosedSignal,omitempty"`
}

// ClosedSignal is a closed signal and its result.
type ClosedSignal struct {
	// id of the signal.
	ID string `json:"id"`
	// symbol it traded.
	Symbol string `json:"symbol"`
	// reason it closed: take_profit, stop_loss, time_expired or liquidation.
	Reason string `json:"reason"`
	// closedAt is the close of the candle it closed on.
	ClosedAt metav1.Time `json:"closedAt"`
	// pnl is its result: slippage and fees on both sides, times its multiplier; absent for
	// a close recorded before results were (or whose result could not be computed).
	// +optional
	PnL *ProfitLoss `json:"pnl,omitempty"`
}

// AppliedState is the state identity and symbols a runner works on.
type AppliedState struct {
	StrategyName string `json:"strategyName"`
	ExchangeName string `json:"exchangeName"`
	// symbols the runner trades.
	// +listType=atomic
	Symbols []string `json:"symbols"`
	// draining are symbols removed from the spec (or every symbol of a state identity being
	// given up): the runner watches their signals to their close and opens none on them,
	// until it confirms so and they are flat.
	// +listType=atomic
	// +optional
	Draining []string `json:"draining,omitempty"`
	// riskProfiles the runner records its positions under (spec.riskProfiles as applied,
	// or the default one named after strategyName): like the identity, they change only
	// once every symbol has drained, so that no open position is left in a profile the
	// runner no longer writes. Unset where an older operator applied the spec's.
	// +listType=atomic
	// +optional
	RiskProfiles []string `json:"riskProfiles,omitempty"`
	// generation of the spec applied.
	Generation int64 `json:"generation"`
}

// EffectiveUpdatePolicy is spec.updatePolicy, Immediate when unset.
func (s *Strategy) EffectiveUpdatePolicy() UpdatePolicy {
	if s.Spec.UpdatePolicy == "" {
		return UpdateImmediate
	}
	return s.Spec.UpdatePolicy
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=strat;strats,categories=trading
// +kubebuilder:printcolumn:name="Backend",type=string,JSONPath=`.spec.persistence.backend`
// +kubebuilder:printcolumn:name="Symbols",type=string,JSONPath=`.spec.symbols`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Trading",type=string,JSONPath=`.status.conditions[?(@.type=="Trading")].reason`
// +kubebuilder:printcolumn:name="Open Signals",type=integer,JSONPath=`.status.openSignals`
// +kubebuilder:printcolumn:name="Last PnL %",type=number,JSONPath=`.status.lastClosedSignal.pnl.pnlPercentage`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Strategy runs one trading strategy on a set of symbols, with its crash state kept in the chosen backend.
type Strategy struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// +required
	Spec StrategySpec `json:"spec"`

	// +optional
	Status StrategyStatus `json:"status,omitzero"`
}

// DefaultQuietAfter is spec.quietAfter when unset.
const DefaultQuietAfter = 24 * time.Hour

// EffectiveQuietAfter is spec.quietAfter, or its default when unset.
func (s *Strategy) EffectiveQuietAfter() time.Duration {
	if s.Spec.QuietAfter != nil {
		return s.Spec.QuietAfter.Duration
	}
	return DefaultQuietAfter
}

// EffectiveLiveEntries is spec.history.liveEntries, or its default when unset.
func (s *Strategy) EffectiveLiveEntries() int {
	if s.Spec.History.LiveEntries > 0 {
		return int(s.Spec.History.LiveEntries)
	}
	return DefaultLiveEntries
}

// EffectiveArchivedEntries is spec.history.archivedEntries, or its default when unset.
func (s *Strategy) EffectiveArchivedEntries() int {
	if s.Spec.History.ArchivedEntries > 0 {
		return int(s.Spec.History.ArchivedEntries)
	}
	return DefaultArchivedEntries
}

// EffectiveRiskProfiles is spec.riskProfiles, or the one named after the strategy when
// none is listed.
func (s *Strategy) EffectiveRiskProfiles() []string {
	if len(s.Spec.RiskProfiles) > 0 {
		return s.Spec.RiskProfiles
	}
	return []string{s.EffectiveStrategyName()}
}

// EffectiveStrategyName is spec.strategyName, or the object's name when that is empty.
func (s *Strategy) EffectiveStrategyName() string {
	if s.Spec.StrategyName != "" {
		return s.Spec.StrategyName
	}
	return s.Name
}

// +kubebuilder:object:root=true

// StrategyList contains a list of Strategy.
type StrategyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []Strategy `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &Strategy{}, &StrategyList{})
		return nil
	})
}
