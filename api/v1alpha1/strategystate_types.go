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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// StatePhase summarises a StrategyState for `kubectl get`.
// +kubebuilder:validation:Enum=Idle;Scheduled;Open
type StatePhase string

// State phases.
const (
	// PhaseIdle: no active and no scheduled signal.
	PhaseIdle StatePhase = "Idle"
	// PhaseScheduled: a scheduled (limit entry) signal waits for its price.
	PhaseScheduled StatePhase = "Scheduled"
	// PhaseOpen: a signal is active.
	PhaseOpen StatePhase = "Open"
)

// StrategyStateSpec is the persisted crash state of one strategy on one exchange and symbol:
// backtest-kit's signal, schedule, strategy, partial and breakeven domains for that key.
// Risk positions are keyed by risk profile, not by symbol, and are not kept here.
// +kubebuilder:validation:XValidation:rule="self.phase == (has(self.signal) ? 'Open' : (has(self.scheduledSignal) ? 'Scheduled' : 'Idle'))",message="phase must be Open while signal is set, else Scheduled while scheduledSignal is set, else Idle"
// +kubebuilder:validation:XValidation:rule="!has(self.signal) || (self.signal.symbol == self.symbol && self.signal.strategyName == self.strategyName && self.signal.exchangeName == self.exchangeName)",message="signal must belong to this state's symbol, strategyName and exchangeName"
// +kubebuilder:validation:XValidation:rule="!has(self.scheduledSignal) || (self.scheduledSignal.symbol == self.symbol && self.scheduledSignal.strategyName == self.strategyName && self.scheduledSignal.exchangeName == self.exchangeName)",message="scheduledSignal must belong to this state's symbol, strategyName and exchangeName"
type StrategyStateSpec struct {
	// strategyName the state belongs to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	StrategyName string `json:"strategyName"`

	// exchangeName the state belongs to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	ExchangeName string `json:"exchangeName"`

	// symbol the state belongs to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +required
	Symbol string `json:"symbol"`

	// phase is derived from the signals and set by the writer in the same write, so that
	// `kubectl get strategystates` can show it; the API server refuses a phase that does
	// not match them.
	// +kubebuilder:default=Idle
	// +optional
	Phase StatePhase `json:"phase,omitempty"`

	// signal is the active signal, absent when none is open.
	// +optional
	Signal *Signal `json:"signal,omitempty"`

	// scheduledSignal is the signal waiting for its limit entry, absent when none.
	// +optional
	ScheduledSignal *Signal `json:"scheduledSignal,omitempty"`

	// snapshot is the strategy's write-ahead snapshot.
	// +optional
	Snapshot *StrategySnapshot `json:"snapshot,omitempty"`

	// partial holds the partial profit and loss levels, by signal id.
	// +optional
	Partial map[string]PartialData `json:"partial,omitempty"`

	// breakeven holds the breakeven state, by signal id.
	// +optional
	Breakeven map[string]BreakevenData `json:"breakeven,omitempty"`

	// display is the signal's prices as `kubectl get` shows them, derived by the writer
	// from signal (or scheduledSignal) in the same write, as phase is.
	// +optional
	Display *StateDisplay `json:"display,omitempty"`
}

// PhaseFor is the phase that matches the given signals.
func PhaseFor(signal, scheduled *Signal) StatePhase {
	switch {
	case signal != nil:
		return PhaseOpen
	case scheduled != nil:
		return PhaseScheduled
	default:
		return PhaseIdle
	}
}

// StrategyStateStatus is what the operator shows of a state beside it: the symbol's last
// close, read from its ledger. The runner writes the spec alone, and the operator only
// this.
type StrategyStateStatus struct {
	// lastClose is the symbol's last closed signal, with its result.
	// +optional
	LastClose *StateClose `json:"lastClose,omitempty"`
}

// StateClose is a closed signal as `kubectl get strategystates` shows it.
type StateClose struct {
	// id of the signal.
	ID string `json:"id"`
	// reason it closed: take_profit, stop_loss, time_expired or liquidation.
	Reason string `json:"reason"`
	// closedAt is the close of the candle it closed on.
	ClosedAt metav1.Time `json:"closedAt"`
	// pnl is its PnL percentage at a trader's precision ("+1.10 %"); absent when no result
	// was recorded.
	// +optional
	PnL string `json:"pnl,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sstate;sstates,categories=trading
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.strategyName`
// +kubebuilder:printcolumn:name="Symbol",type=string,JSONPath=`.spec.symbol`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.spec.phase`
// +kubebuilder:printcolumn:name="Position",type=string,JSONPath=`.spec.display.position`
// +kubebuilder:printcolumn:name="Open",type=string,JSONPath=`.spec.display.priceOpen`
// +kubebuilder:printcolumn:name="Take Profit",type=string,JSONPath=`.spec.display.takeProfit`
// +kubebuilder:printcolumn:name="Stop Loss",type=string,JSONPath=`.spec.display.stopLoss`
// +kubebuilder:printcolumn:name="Last PnL",type=string,JSONPath=`.status.lastClose.pnl`
// +kubebuilder:printcolumn:name="Exchange",type=string,JSONPath=`.spec.exchangeName`,priority=1
// +kubebuilder:printcolumn:name="Signal",type=string,JSONPath=`.spec.signal.id`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// StrategyState is the persisted state of one strategy on one exchange and symbol. Its spec
// is data written by the strategy's runner alone: every change is one write. Its status is
// what the operator shows beside it.
type StrategyState struct {
	metav1.TypeMeta `json:",inline"`

	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// +required
	Spec StrategyStateSpec `json:"spec"`

	// +optional
	Status StrategyStateStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// StrategyStateList contains a list of StrategyState.
type StrategyStateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []StrategyState `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(SchemeGroupVersion, &StrategyState{}, &StrategyStateList{})
		return nil
	})
}
