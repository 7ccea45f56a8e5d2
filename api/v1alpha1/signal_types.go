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
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Position is the direction of a signal.
// +kubebuilder:validation:Enum=long;short
type Position string

// Positions.
const (
	PositionLong  Position = "long"
	PositionShort Position = "short"
)

// Signal is one signal row as backtest-kit writes it: the active (pending) signal of a
// symbol, or its scheduled limit entry. Field names are backtest-kit's; prices are JSON
// numbers and times are Unix milliseconds. Fields this type does not know are kept in
// Extra and written back unchanged.
//
// The rules below are the ones of backtest-kit's signal validation that need no market price.
// +kubebuilder:validation:XValidation:rule="self.priceOpen > 0.0",message="priceOpen must be positive"
// +kubebuilder:validation:XValidation:rule="self.priceTakeProfit > 0.0",message="priceTakeProfit must be positive"
// +kubebuilder:validation:XValidation:rule="self.priceStopLoss > 0.0",message="priceStopLoss must be positive"
// +kubebuilder:validation:XValidation:rule="self.position != 'long' || self.priceTakeProfit > self.priceOpen",message="Long: priceTakeProfit must be > priceOpen"
// +kubebuilder:validation:XValidation:rule="self.position != 'long' || self.priceStopLoss < self.priceOpen",message="Long: priceStopLoss must be < priceOpen"
// +kubebuilder:validation:XValidation:rule="self.position != 'short' || self.priceTakeProfit < self.priceOpen",message="Short: priceTakeProfit must be < priceOpen"
// +kubebuilder:validation:XValidation:rule="self.position != 'short' || self.priceStopLoss > self.priceOpen",message="Short: priceStopLoss must be > priceOpen"
// +kubebuilder:validation:XValidation:rule="!has(self.minuteEstimatedTime) || self.minuteEstimatedTime > 0",message="minuteEstimatedTime must be a positive integer, or null for unbounded"
// +kubebuilder:validation:XValidation:rule="!has(self.multiplier) || self.multiplier > 0.0",message="multiplier must be positive"
// +kubebuilder:pruning:PreserveUnknownFields
type Signal struct {
	// id of the signal, unique per strategy.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +required
	ID string `json:"id"`
	// position is long or short.
	// +required
	Position Position `json:"position"`
	// priceOpen is the entry price.
	// +required
	PriceOpen float64 `json:"priceOpen"`
	// priceTakeProfit closes the signal in profit when reached.
	// +required
	PriceTakeProfit float64 `json:"priceTakeProfit"`
	// priceStopLoss closes the signal at a loss when reached.
	// +required
	PriceStopLoss float64 `json:"priceStopLoss"`
	// minuteEstimatedTime is how long the signal may stay open, in minutes; absent or null means unbounded
	// (backtest-kit's Infinity, which JSON writes as null).
	// +optional
	MinuteEstimatedTime *int64 `json:"minuteEstimatedTime"`
	// note is free text from the strategy.
	// +optional
	Note *string `json:"note,omitempty"`
	// cost of the position in quote currency.
	// +optional
	Cost *float64 `json:"cost,omitempty"`
	// multiplier (leverage) of the position.
	// +optional
	Multiplier *float64 `json:"multiplier,omitempty"`
	// isolated margin.
	// +optional
	Isolated *bool `json:"isolated,omitempty"`
	// symbol the signal trades.
	// +required
	Symbol string `json:"symbol"`
	// exchangeName of the strategy that emitted the signal.
	// +required
	ExchangeName string `json:"exchangeName"`
	// strategyName of the strategy that emitted the signal.
	// +required
	StrategyName string `json:"strategyName"`
	// frameName is backtest-kit's frame; empty in live trading.
	// +required
	FrameName string `json:"frameName"`
	// scheduledAt is when the signal was created.
	// +required
	ScheduledAt int64 `json:"scheduledAt"`
	// pendingAt is when the signal became active; 0 while it is only scheduled.
	// +required
	PendingAt int64 `json:"pendingAt"`
	// timestamp of the signal.
	// +required
	Timestamp int64 `json:"timestamp"`
	// isScheduled is true while the signal waits for its limit entry.
	// +required
	IsScheduled bool `json:"_isScheduled"`
	// entry lists the fills that make up the position.
	// +optional
	Entry []EntryFill `json:"_entry,omitzero"`
	// peak is the best price seen while open.
	// +optional
	Peak *PriceExtreme `json:"_peak,omitempty"`
	// fall is the worst price seen while open.
	// +optional
	Fall *PriceExtreme `json:"_fall,omitempty"`
	// partial lists partial closes.
	// +optional
	Partial []PartialClose `json:"_partial,omitzero"`
	// trailingPriceStopLoss overrides priceStopLoss once a trailing stop moved it.
	// +optional
	TrailingPriceStopLoss *float64 `json:"_trailingPriceStopLoss,omitempty"`
	// trailingPriceTakeProfit overrides priceTakeProfit once a trailing take profit moved it.
	// +optional
	TrailingPriceTakeProfit *float64 `json:"_trailingPriceTakeProfit,omitempty"`

	// Extra holds the fields of the row this type does not know, written back unchanged.
	Extra map[string]apiextensionsv1.JSON `json:"-"`
	// keyOrder is the order of the row's members as read, kept so that a row written back
	// unchanged is byte for byte the row read.
	keyOrder []string `json:"-"`
}

// EntryFill is one fill of a position (backtest-kit's _entry items).
// +kubebuilder:pruning:PreserveUnknownFields
type EntryFill struct {
	Price     float64 `json:"price"`
	Cost      float64 `json:"cost"`
	Timestamp int64   `json:"timestamp"`

	// Extra holds the fields this type does not know, written back unchanged.
	Extra    map[string]apiextensionsv1.JSON `json:"-"`
	keyOrder []string                        `json:"-"`
}

// PriceExtreme is the best or worst point of an open signal (backtest-kit's _peak and _fall).
// +kubebuilder:pruning:PreserveUnknownFields
type PriceExtreme struct {
	Price         float64 `json:"price"`
	Timestamp     int64   `json:"timestamp"`
	PnlPercentage float64 `json:"pnlPercentage"`
	PnlCost       float64 `json:"pnlCost"`
	PriceClose    float64 `json:"priceClose"`
	PriceOpen     float64 `json:"priceOpen"`
	PnlEntries    float64 `json:"pnlEntries"`

	// Extra holds the fields this type does not know, written back unchanged.
	Extra    map[string]apiextensionsv1.JSON `json:"-"`
	keyOrder []string                        `json:"-"`
}

// ProfitLoss is a signal's result at a price, as backtest-kit computes it (toProfitLossDto):
// slippage and fees on both sides, times the multiplier.
type ProfitLoss struct {
	// pnlPercentage is the profit in percent of the money invested (negative: a loss).
	PnlPercentage float64 `json:"pnlPercentage"`
	// pnlCost is the profit in quote currency.
	PnlCost float64 `json:"pnlCost"`
	// pnlEntries is the money invested, in quote currency.
	PnlEntries float64 `json:"pnlEntries"`
	// priceOpen is the effective entry price, without slippage.
	PriceOpen float64 `json:"priceOpen"`
	// priceClose is the price the result is taken at.
	PriceClose float64 `json:"priceClose"`
}

// PartialClose is one partial close of a position (backtest-kit's _partial items).
// +kubebuilder:pruning:PreserveUnknownFields
type PartialClose struct {
	// type is profit or loss.
	// +kubebuilder:validation:Enum=profit;loss
	Type string `json:"type"`
	// percent of the position's cost basis closed.
	Percent float64 `json:"percent"`
	// entryCountAtClose is how many of the _entry fills the position had then. The fields
	// below are absent in rows of earlier backtest-kit versions, and stay absent.
	// +optional
	EntryCountAtClose *int64 `json:"entryCountAtClose,omitempty"`
	// currentPrice the part was closed at.
	// +optional
	CurrentPrice *float64 `json:"currentPrice,omitempty"`
	// costBasisAtClose is the position's cost basis just before the close.
	// +optional
	CostBasisAtClose *float64 `json:"costBasisAtClose,omitempty"`
	// timestamp of the close, Unix milliseconds.
	// +optional
	Timestamp *int64 `json:"timestamp,omitempty"`

	// Extra holds the fields this type does not know, written back unchanged.
	Extra    map[string]apiextensionsv1.JSON `json:"-"`
	keyOrder []string                        `json:"-"`
}

// StrategySnapshot is the write-ahead record of a strategy on one symbol: what it was about
// to do when it last wrote, so that a restart can finish or undo it. The *Signal fields are
// kept as opaque JSON; nil writes JSON null.
// +kubebuilder:pruning:PreserveUnknownFields
type StrategySnapshot struct {
	// +optional
	PendingSignalID *string `json:"pendingSignalId"`
	// +optional
	LastPendingID *string `json:"lastPendingId"`
	// +optional
	CreatedSignal *apiextensionsv1.JSON `json:"createdSignal"`
	// +optional
	CommitQueue []apiextensionsv1.JSON `json:"commitQueue"`
	// +optional
	ClosedSignal *apiextensionsv1.JSON `json:"closedSignal"`
	// +optional
	CancelledSignal *apiextensionsv1.JSON `json:"cancelledSignal"`
	// +optional
	ActivatedSignal *apiextensionsv1.JSON `json:"activatedSignal"`
	// +optional
	TakeProfitSignal *apiextensionsv1.JSON `json:"takeProfitSignal"`
	// +optional
	StopLossSignal *apiextensionsv1.JSON `json:"stopLossSignal"`
	// +optional
	RetryOpenSignal *apiextensionsv1.JSON `json:"retryOpenSignal"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	RetryOpenCount int64 `json:"retryOpenCount"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	RetryCloseCount int64 `json:"retryCloseCount"`
	// +optional
	IsPaused bool `json:"isPaused"`

	// Extra holds the fields this type does not know, written back unchanged.
	Extra    map[string]apiextensionsv1.JSON `json:"-"`
	keyOrder []string                        `json:"-"`
}

// PartialLevels are the profit and loss levels (percent of the way to take profit or stop
// loss) a signal has crossed.
type PartialLevels struct {
	// +listType=atomic
	ProfitLevels []float64 `json:"profitLevels"`
	// +listType=atomic
	LossLevels []float64 `json:"lossLevels"`
}

// PartialData is backtest-kit's partial record: signal id to levels.
type PartialData map[string]PartialLevels

// BreakevenLevel says whether a signal's breakeven point was reached.
type BreakevenLevel struct {
	Reached bool `json:"reached"`
}

// BreakevenData is backtest-kit's breakeven record: signal id to state.
type BreakevenData map[string]BreakevenLevel

// ActivePosition is one open position of a risk profile, as backtest-kit keeps it in the
// risk domain. Fields this type does not know are kept in Extra.
type ActivePosition struct {
	StrategyName    string   `json:"strategyName"`
	ExchangeName    string   `json:"exchangeName"`
	FrameName       string   `json:"frameName"`
	Symbol          string   `json:"symbol"`
	Position        Position `json:"position"`
	PriceOpen       float64  `json:"priceOpen"`
	PriceStopLoss   float64  `json:"priceStopLoss"`
	PriceTakeProfit float64  `json:"priceTakeProfit"`
	// MinuteEstimatedTime nil means unbounded (JSON null).
	MinuteEstimatedTime *int64 `json:"minuteEstimatedTime"`
	OpenTimestamp       int64  `json:"openTimestamp"`

	Extra    map[string]apiextensionsv1.JSON `json:"-"`
	keyOrder []string                        `json:"-"`
}

// RiskEntry is one [key, position] pair of backtest-kit's risk record.
type RiskEntry struct {
	Key      string
	Position ActivePosition
}

// RiskPositions is backtest-kit's risk record: the open positions of one risk profile on
// one exchange, shared by every strategy of that profile. JSON is a list of [key, position]
// pairs.
type RiskPositions []RiskEntry
