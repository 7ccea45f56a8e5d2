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

package kubestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// entryMeta is the bookkeeping of one key, kept in AnnotationEntries by key.
type entryMeta struct {
	Rev uint64 `json:"r"`
}

// applied is one write in AnnotationRecent: its id and the sequence number it took.
type applied struct {
	WriteID string
	Seq     uint64
}

func (a applied) MarshalJSON() ([]byte, error) { return json.Marshal([]any{a.WriteID, a.Seq}) }

func (a *applied) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("want [writeID, seq], got %s", b)
	}
	return errors.Join(json.Unmarshal(pair[0], &a.WriteID), json.Unmarshal(pair[1], &a.Seq))
}

// state is an object with its bookkeeping decoded.
type state struct {
	obj     client.Object
	entries map[string]entryMeta
	// seq numbers the writes applied to the object (puts and deletes alike); recent are
	// the last recentWrites of them, oldest first.
	seq    uint64
	recent []applied
	token  int64
	writer string
	// usage is how full the object is (0 to 1) as store last left it; dataBytes and
	// dataLimit are its data's size and limit (0: the layout does not tell).
	usage                float64
	dataBytes, dataLimit int
}

// errCorrupt: the object's bookkeeping cannot be read; retrying will not help.
var errCorrupt = errors.New("corrupt store bookkeeping")

func readState(obj client.Object) (*state, error) {
	s := &state{obj: obj, entries: map[string]entryMeta{}}
	ann := obj.GetAnnotations()
	if raw := ann[AnnotationEntries]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &s.entries); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationEntries, err)
		}
	}
	var err error
	if raw := ann[AnnotationSeq]; raw != "" {
		if s.seq, err = strconv.ParseUint(raw, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationSeq, err)
		}
	}
	if raw := ann[AnnotationToken]; raw != "" {
		if s.token, err = strconv.ParseInt(raw, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationToken, err)
		}
	}
	s.writer = ann[AnnotationWriter]
	if raw := ann[AnnotationRecent]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &s.recent); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationRecent, err)
		}
	}
	return s, nil
}

// store writes the bookkeeping back into the object's annotations, with the key count
// and how full the object is (see AnnotationUsage).
func (s *state) store(layout Layout) error {
	raw, err := json.Marshal(s.entries)
	if err != nil {
		return err
	}
	ann := s.obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationEntries] = string(raw)
	ann[AnnotationSeq] = strconv.FormatUint(s.seq, 10)
	ann[AnnotationKeys] = strconv.Itoa(len(s.entries))
	if raw, err = json.Marshal(s.recent); err != nil {
		return err
	}
	ann[AnnotationRecent] = string(raw)
	if s.token > 0 {
		ann[AnnotationToken] = strconv.FormatInt(s.token, 10)
		ann[AnnotationWriter] = s.writer
	}
	ann[AnnotationUsage] = "100" // its own few bytes count too; set below
	annBytes := 0
	for k, v := range ann {
		annBytes += len(k) + len(v)
	}
	s.usage = float64(annBytes) / maxAnnotationBytes
	if sz, ok := layout.(Sizer); ok {
		used, limit := sz.Size(s.obj)
		s.usage = max(s.usage, float64(used)/float64(limit))
		s.dataBytes, s.dataLimit = used, limit
	}
	ann[AnnotationUsage] = strconv.Itoa(int(s.usage * 100))
	s.obj.SetAnnotations(ann)
	if annBytes > maxAnnotationBytes {
		return fmt.Errorf("%w: %s has too many keys for its bookkeeping (%d bytes of annotations, limit %d)",
			driver.ErrTooLarge, s.obj.GetName(), annBytes, maxAnnotationBytes)
	}
	return nil
}

// record numbers one applied write of o and remembers it in recent.
func (s *state) record(o *op) uint64 {
	s.seq++
	s.recent = append(s.recent, applied{WriteID: o.writeID, Seq: s.seq})
	if n := len(s.recent); n > recentWrites {
		s.recent = slices.Delete(s.recent, 0, n-recentWrites)
	}
	return s.seq
}

// landed tells whether o, whose earlier update went unanswered, was applied then:
// applied with the sequence number it took; or known not applied, when recent still
// covers every write since that update's read; or neither, when too many writes came
// since.
func (s *state) landed(o *op) (seq uint64, applied, known bool) {
	for _, a := range s.recent {
		if a.WriteID == o.writeID {
			return a.Seq, true, true
		}
	}
	return 0, false, s.seq-o.baseSeq <= uint64(len(s.recent))
}

func (s *state) revision(m entryMeta) driver.Revision {
	return driver.Revision(fmt.Sprintf("%s.%d", s.obj.GetUID(), m.Rev))
}

// revisionIncarnation is the Incarnation of the object a revision was read from.
func revisionIncarnation(r driver.Revision) string {
	inc, _, _ := strings.Cut(string(r), ".")
	return inc
}
