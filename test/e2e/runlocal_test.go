//go:build e2e

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

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 {
			if ppid, err := strconv.Atoi(fields[1]); err == nil {
				children[ppid] = append(children[ppid], p)
			}
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// runLocalStderr is what the run-local started last printed on stderr.
var runLocalStderr *testenv.Output

// startRunLocal starts run-local with its output on stdout (nil: a pipe the caller reads
// through the returned reader), its errors in runLocalStderr.
func startRunLocal(stdout *os.File) (*exec.Cmd, io.Reader) {
	root := testenv.RepoRoot()
	cmd := exec.Command(filepath.Join(root, "bin", "run-local"), "--assets", testenv.BinaryDir(),
		"--install", filepath.Join(root, "bin", "run-local.yaml"), "--images", filepath.Join(root, "bin", "images"))
	cmd.Dir = root
	cmd.SysProcAttr = childproc.SysProcAttr() // dies with the suite
	var out io.Reader
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		pipe, err := cmd.StdoutPipe()
		Expect(err).NotTo(HaveOccurred())
		out = pipe
	}
	runLocalStderr = &testenv.Output{}
	cmd.Stderr = io.MultiWriter(GinkgoWriter, runLocalStderr)
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

// named is the process of pids running the binary name, 0 if none.
func named(pids []int, name string) int {
	for _, p := range pids {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
		if err == nil && filepath.Base(strings.SplitN(string(cmdline), "\x00", 2)[0]) == name {
			return p
		}
	}
	return 0
}

// waitForPods waits until run-local has the control plane, the manager and three runners
// below it, and returns those processes.
func waitForPods(cmd *exec.Cmd) []int {
	var procs []int
	Eventually(func() []int {
		procs = descendants(cmd.Process.Pid)
		return procs
	}, 3*time.Minute, time.Second).Should(WithTransform(func(p []int) int { return len(p) }, BeNumerically(">=", 7)),
		"etcd, kube-apiserver, kube-controller-manager, the manager, three runners")
	return procs
}

func expectGone(procs []int, why string) {
	for _, p := range procs {
		Eventually(func() error { return syscall.Kill(p, 0) }, 10*time.Second, 100*time.Millisecond).
			Should(MatchError(syscall.ESRCH), "process %d outlived run-local (%s)", p, why)
	}
}

var _ = Describe("make run-local", func() {
	It("shows live strategy states, and Ctrl-C leaves no process behind", func(ctx SpecContext) {
		cmd, stdout := startRunLocal(nil)

		By("waiting for the strategy states and the instructions it prints")
		printed := make(chan string, 1)
		go func() {
			var sb strings.Builder
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				sb.WriteString(sc.Text() + "\n")
				GinkgoWriter.Println(sc.Text())
				if strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
					printed <- sb.String()
					break
				}
			}
			_, _ = io.Copy(GinkgoWriter, stdout)
			close(printed)
		}()
		var out string
		Eventually(printed, 3*time.Minute).Should(Receive(&out))
		Expect(out).To(MatchRegexp(`(?m)^strategystate\S+ +\S+ +\w+ +(Open|Scheduled) `))
		Expect(out).To(MatchRegexp(`export KUBECONFIG=\S+/kubeconfig`))
		for _, s := range []string{"breakout", "momentum-configmap", "momentum-file", "momentum-redis",
			"momentum-postgresql", "momentum-mongodb", "breakout-go-sdk", "node-bot"} {
			Expect(out).To(ContainSubstring("strategy.trading.strategyops.dev/" + s + " "))
		}

		kubeconfig := regexp.MustCompile(`export KUBECONFIG=(\S+)`).FindStringSubmatch(out)[1]
		By("kubectl finds the plugin run-local names: kubectl strategy status shows a sample's signals and Lease")
		path := regexp.MustCompile(`PATH=(\S+):\$PATH`).FindStringSubmatch(out)
		Expect(path).To(HaveLen(2), "run-local names no PATH for the kubectl plugin")
		status := exec.CommandContext(ctx, filepath.Join(testenv.BinaryDir(), "kubectl"), "strategy", "status", "breakout")
		status.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+path[1]+":"+os.Getenv("PATH"))
		shown, err := status.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(shown))
		Expect(string(shown)).To(And(ContainSubstring("Strategy:  default/breakout"), MatchRegexp(`fencing token \d+`),
			MatchRegexp(`(?m)^BTCUSDT +(Open|Scheduled|Idle) `)))

		By("following docs/backtest-kit-bot.md: make local-image with the registry run-local names, its Strategy")
		followBotDoc(ctx, out, kubeconfig)
		By("following docs/go-strategy.md: its program from an empty folder, make local-image, its Strategy")
		followGoDoc(ctx, out, kubeconfig)

		By("a control-plane process that dies is told of at once and started again")
		apiserver := named(descendants(cmd.Process.Pid), "kube-apiserver")
		Expect(apiserver).NotTo(BeZero())
		Expect(syscall.Kill(apiserver, syscall.SIGKILL)).To(Succeed())
		Eventually(runLocalStderr.String, 30*time.Second).Should(And(
			ContainSubstring(fmt.Sprintf("warning: kube-apiserver (pid %d) died; starting it again", apiserver)),
			ContainSubstring("warning: kube-apiserver runs again")))
		Eventually(func() error {
			kubectl := filepath.Join(testenv.BinaryDir(), "kubectl")
			return exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "get", "strategies").Run()
		}, time.Minute, time.Second).Should(Succeed(), "the restarted API server answers")
		Expect(runLocalStderr.String()).NotTo(ContainSubstring("client-side throttling"),
			"client-go's lines go to the kubelet's log")
		Expect(runLocalStderr.String()).NotTo(ContainSubstring("log.SetLogger(...) was never called"),
			"controller-runtime's errors go to the terminal through a logger run-local sets")

		By("Ctrl-C stops the runners, the manager and the control plane")
		procs := descendants(cmd.Process.Pid)
		Expect(len(procs)).To(BeNumerically(">=", 17),
			"etcd, kube-apiserver, kube-controller-manager, the manager, eight runners and a Node process, Redis, PostgreSQL, "+
				"and FerretDB with its PostgreSQL")
		Expect(cmd.Process.Signal(os.Interrupt)).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		Eventually(done, time.Minute).Should(Receive(BeNil()))
		for _, p := range procs {
			Expect(syscall.Kill(p, 0)).To(MatchError(syscall.ESRCH), "process %d outlived run-local", p)
		}
	})

	It("leaves no process behind when it is killed with SIGKILL", func(ctx SpecContext) {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = devnull.Close() }()
		cmd, _ := startRunLocal(devnull)
		procs := waitForPods(cmd)
		Expect(cmd.Process.Kill()).To(Succeed())
		_ = cmd.Wait()
		expectGone(procs, "SIGKILL")

		By("everything the killed run kept is in folders it owns, which the next run sweeps")
		prefixes := []string{"strategy-operator-local-", "strategyops-postgres-"}
		owned := func() []string {
			var out []string
			for _, prefix := range prefixes {
				dirs, err := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
				Expect(err).NotTo(HaveOccurred())
				for _, dir := range dirs {
					if pid, _ := os.ReadFile(filepath.Join(dir, ".owner")); string(pid) == strconv.Itoa(cmd.Process.Pid) {
						out = append(out, dir)
					}
				}
			}
			return out
		}
		left := owned()
		Expect(left).To(ContainElement(ContainSubstring(prefixes[0])), "no folder of the killed run found")
		for _, dir := range left {
			if strings.Contains(dir, prefixes[0]) {
				Expect(filepath.Join(dir, "etcd")).To(BeADirectory(), "etcd's data is kept in the run's folder")
			}
		}
		if os.Geteuid() == 0 { // PostgreSQL's folders are under /tmp then, for its unprivileged user
			Expect(left).To(ContainElement(ContainSubstring(prefixes[1])), "PostgreSQL's data of the killed run")
		}
		for _, prefix := range prefixes { // what the next run (or test) does first
			dir, err := testenv.OwnedDir("", prefix)
			Expect(err).NotTo(HaveOccurred())
			Expect(os.RemoveAll(dir)).To(Succeed())
		}
		Expect(owned()).To(BeEmpty(), "the next run swept the killed run's folders")
	})

	It("cleans up on Ctrl-C after the reader of its output died (make run-local | tee, Ctrl-C)", func(ctx SpecContext) {
		r, w, err := os.Pipe()
		Expect(err).NotTo(HaveOccurred())
		cmd, _ := startRunLocal(w)
		Expect(w.Close()).To(Succeed())
		go func() { _, _ = io.Copy(GinkgoWriter, r) }()
		procs := waitForPods(cmd)
		Expect(r.Close()).To(Succeed()) // the reader dies first, as tee does on Ctrl-C
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// run-local may have stopped already, at a line it could not print.
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			Expect(err).To(MatchError(os.ErrProcessDone))
		}
		Eventually(done, time.Minute).Should(Receive(BeNil()),
			"run-local must finish its clean-up and exit 0, not die of the broken pipe")
		expectGone(procs, "broken pipe")
	})

	It("stops cleanly, leaving no process behind, once the reader of its output is gone (make run-local | head)",
		func(ctx SpecContext) {
			r, w, err := os.Pipe()
			Expect(err).NotTo(HaveOccurred())
			cmd, _ := startRunLocal(w)
			Expect(w.Close()).To(Succeed())
			lines := bufio.NewReader(r)
			for {
				line, err := lines.ReadString('\n')
				Expect(err).NotTo(HaveOccurred(), "run-local's output ended before the registry's line")
				GinkgoWriter.Print(line)
				if strings.HasPrefix(line, "registry ") {
					break // the control plane and the registry run
				}
			}
			procs := descendants(cmd.Process.Pid)
			Expect(named(procs, "kube-apiserver")).NotTo(BeZero())
			Expect(r.Close()).To(Succeed()) // as head does after its lines
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			Eventually(done, time.Minute).Should(Receive(BeNil()),
				"run-local must stop at its next line, finish its clean-up and exit 0, not die of the broken pipe")
			Expect(runLocalStderr.String()).To(ContainSubstring("the reader of run-local's output went away; stopping"))
			expectGone(procs, "broken pipe")
		})
})

// followBotDoc follows docs/backtest-kit-bot.md on the run-local that printed banner: the
// bot's folder as its first steps leave it, make local-image as the banner says, the doc's
// Strategy applied as it is, until kubectl get strategystates shows the bot's signal.
func followBotDoc(ctx SpecContext, banner, kubeconfig string) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "backtest-kit-bot.md"))
	Expect(err).NotTo(HaveOccurred())
	Expect(string(doc)).To(ContainSubstring(
		"make local-image LOCAL_REGISTRY=127.0.0.1:PORT DIR=../my-bot IMAGE=my-bot:v1"))
	_, yaml, _ := strings.Cut(string(doc), "\n```yaml\n")
	yaml, _, found := strings.Cut(yaml, "\n```\n")
	Expect(found).To(BeTrue(), "docs/backtest-kit-bot.md shows no Strategy")

	folder := testenv.BotFolder(GinkgoT())
	push := exec.CommandContext(ctx, "make", "-s", "local-image", "LOCAL_REGISTRY="+localRegistry(banner),
		"DIR="+folder, "IMAGE=my-bot:v1")
	push.Dir = testenv.RepoRoot()
	pushed, err := push.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(pushed))
	applyAndAwait(ctx, kubeconfig, yaml, `(?m)^my-strategy-simulated-btcusdt\S* +my-strategy +BTCUSDT +Open +long +\d`)
}

// localRegistry is the registry address run-local's banner names in its make local-image line.
func localRegistry(banner string) string {
	registry := regexp.MustCompile(`make local-image LOCAL_REGISTRY=(\S+) `).FindStringSubmatch(banner)
	Expect(registry).To(HaveLen(2), "run-local's banner names no make local-image line")
	return registry[1]
}

// applyAndAwait applies a doc's Strategy and waits until kubectl get strategystates shows
// what the doc promises (the regular expression shown).
func applyAndAwait(ctx SpecContext, kubeconfig, yaml, shown string) {
	kubectl := filepath.Join(testenv.BinaryDir(), "kubectl")
	apply := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "apply", "-f", "-")
	apply.Stdin = strings.NewReader(yaml)
	applied, err := apply.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(applied))
	Eventually(func() string {
		get := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "get", "strategystates")
		out, _ := get.CombinedOutput()
		GinkgoWriter.Printf("%s", out)
		return string(out)
	}, 3*time.Minute, 5*time.Second).Should(MatchRegexp(shown), "the doc's strategy shows no signal on run-local")
}

// docBlocks are the fenced blocks of a doc, in order, each with its language.
func docBlocks(doc string) []struct{ lang, body string } {
	matches := regexp.MustCompile("(?s)\n```(\\w+)\n(.*?)\n```\n").FindAllStringSubmatch(doc, -1)
	out := make([]struct{ lang, body string }, 0, len(matches))
	for _, m := range matches {
		out = append(out, struct{ lang, body string }{m[1], m[2] + "\n"})
	}
	return out
}

// followGoDoc follows docs/go-strategy.md on the run-local that printed banner, in an
// empty folder: the sh blocks of its first part with its main.go written between them,
// the make local-image line with the banner's registry, the Strategy it shows, until
// kubectl get strategystates shows the program's signal. The checkout the doc expects
// beside the folder is this one.
func followGoDoc(ctx SpecContext, banner, kubeconfig string) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "go-strategy.md"))
	Expect(err).NotTo(HaveOccurred())
	workspace := GinkgoT().TempDir()
	doc := strings.NewReplacer("../strategy-operator", testenv.RepoRoot(),
		"../my-strategy", filepath.Join(workspace, "my-strategy"), "127.0.0.1:PORT", localRegistry(banner)).
		Replace(string(raw))
	first, _, found := strings.Cut(doc, "\n## 2.")
	Expect(found).To(BeTrue(), "docs/go-strategy.md has no part 2")
	var script, local, yaml string
	for _, b := range docBlocks(first) {
		switch b.lang {
		case "sh":
			script += b.body
		case "go":
			script += "cat > main.go <<'EOF'\n" + b.body + "EOF\n"
		}
	}
	for _, b := range docBlocks(doc) {
		switch {
		case strings.Contains(b.body, "make local-image"):
			local = b.body
		case b.lang == "yaml":
			yaml = b.body
		}
	}
	Expect(script).To(ContainSubstring("go mod init"))
	Expect(local).NotTo(BeEmpty(), "docs/go-strategy.md has no make local-image line")
	Expect(yaml).To(ContainSubstring("kind: Strategy"))
	for _, part := range []string{script, local} {
		run := exec.CommandContext(ctx, "bash", "-euxc", part)
		run.Dir = workspace
		if part == local {
			run.Dir = filepath.Join(workspace, "my-strategy")
		}
		out, err := run.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s\n%s", part, out)
	}
	applyAndAwait(ctx, kubeconfig, yaml, `(?m)^dip-simulated-(btc|eth)usdt\S* +dip +(BTC|ETH)USDT +Open +long +\d`)
}
