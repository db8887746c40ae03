//! A real Slurm runs what `vqm batch --emit slurm` prints: a single-node
//! cluster on loopback (munged, slurmctld and slurmd started here without
//! systemd, with a private munge key and socket and free ports), the
//! script submitted with `sbatch --wait`, then `vqm merge` of its results
//! equals a one-process batch of the same manifest. The test stops exactly
//! the daemons it started. Needs Debian's munge, slurmctld, slurmd and
//! slurm-client (installed by .ci/deps).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The daemons of a test cluster, stopped (their whole process groups) on
/// drop, with the job steps they left running in the cluster's directory.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // slurmstepd detaches into a session of its own: find the ones
        // working in this cluster's spool directory
        let spool = self.dir.join("spool");
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
            if comm.trim() == "slurmstepd"
                && cwd.starts_with(&spool)
                && let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>()
            {
                signal(pid, libc::SIGKILL);
            }
        }
        for d in self.daemons.iter().rev() {
            // each daemon leads its own process group (its helpers too)
            signal(-(d.id() as i32), libc::SIGTERM);
        }
        for d in self.daemons.iter_mut().rev() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            signal(-(d.id() as i32), libc::SIGKILL);
            let _reaped = d.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `sig` to `pid` (a process group when negative).
fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid this test started; no memory is involved
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A program the test needs, or a failure saying which package has it.
fn need(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(program).is_file();
    assert!(
        found,
        "this test needs {program} (Debian package {package}; .ci/deps installs it)"
    );
}

/// A daemon in the foreground, in a process group of its own.
fn daemon(dir: &Path, program: &str, args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(dir.join("log").join(format!("{program}.out"))).unwrap();
    Command::new(program)
        .args(args)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd, and waits for the node to be
    /// idle.
    fn start() -> Cluster {
        for (p, pkg) in [
            ("munged", "munge"),
            ("slurmctld", "slurmctld"),
            ("slurmd", "slurmd"),
            ("sbatch", "slurm-client"),
            ("sinfo", "slurm-client"),
        ] {
            need(p, pkg);
        }
        let dir = tempfile::Builder::new()
            .prefix("vqm-slurm-")
            .tempdir()
            .unwrap()
            .keep();
        for d in ["munge", "state", "spool", "log", "run"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        // a private key: 1 KiB from the kernel's random source
        let mut key = vec![0u8; 1024];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key)
            .unwrap();
        let key_path = dir.join("munge/munge.key");
        std::fs::write(&key_path, key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o400)).unwrap();
        let socket = dir.join("munge/munge.socket");
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (ctld, slurmd) = (free_tcp_port(), free_tcp_port());
        let d = dir.display();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=vqmtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/slurmd-%n
SlurmctldPidFile={d}/run/slurmctld.pid
SlurmdPidFile={d}/run/slurmd-%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerParameters=batch_sched_delay=0,sched_interval=1
MinJobAge=5
MessageTimeout=10
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
NodeName=n1 NodeAddr=127.0.0.1 NodeHostname=localhost CPUs={cpus} RealMemory=1 State=UNKNOWN
PartitionName=batch Nodes=n1 Default=YES MaxTime=INFINITE State=UP
",
                socket = socket.display()
            ),
        )
        .unwrap();
        let mut cluster = Cluster {
            dir: dir.clone(),
            conf: conf.clone(),
            daemons: Vec::new(),
        };
        let p = |x: &Path| x.display().to_string();
        cluster.daemons.push(daemon(
            &dir,
            "munged",
            &[
                "-F",
                "--force",
                &format!("--key-file={}", p(&key_path)),
                &format!("--socket={}", p(&socket)),
                &format!("--pid-file={}", p(&dir.join("run/munged.pid"))),
                &format!("--log-file={}", p(&dir.join("log/munged.log"))),
                &format!("--seed-file={}", p(&dir.join("munge/munge.seed"))),
                "--num-threads=2",
            ],
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "munged made no socket: {}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
            .daemons
            .push(daemon(&dir, "slurmctld", &["-D", "-i", "-f", &p(&conf)]));
        cluster
            .daemons
            .push(daemon(&dir, "slurmd", &["-D", "-f", &p(&conf), "-N", "n1"]));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = cluster
                .command("sinfo")
                .args(["-h", "-N", "-n", "n1", "-o", "%t"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&o.stdout).starts_with("idle") {
                break;
            }
            for d in cluster.daemons.iter_mut() {
                assert!(
                    d.try_wait().unwrap().is_none(),
                    "a daemon died: {}",
                    cluster_logs(&dir)
                );
            }
            assert!(
                Instant::now() < deadline,
                "the node never became idle: {}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster
    }

    /// A Slurm client command for this cluster.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        c
    }

    fn logs(&self) -> String {
        cluster_logs(&self.dir)
    }
}

/// The tails of a cluster's logs, for a failure message.
fn cluster_logs(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir.join("log"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        out.push_str(&format!("\n== {}\n", e.path().display()));
        for l in tail.iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_real_slurm_runs_the_emitted_array_and_merge_equals_one_run() {
    let work = tempfile::tempdir().unwrap();
    let r = sample("ref.mp4");
    let mut manifest = String::from("id,reference,distorted\n");
    for (id, d) in [
        ("dist", "dist.mp4"),
        ("r180", "ladder/r180.mp4"),
        ("r270", "ladder/r270.mp4"),
        ("r360", "ladder/r360.mp4"),
        ("again", "dist.mp4"),
    ] {
        manifest.push_str(&format!("{id},{r},{}\n", sample(d)));
    }
    let m = work.path().join("m.csv");
    std::fs::write(&m, manifest).unwrap();
    // an output directory whose name sbatch would split, cut or expand
    // if it were not quoted for it: its tasks' logs still land in it
    let res = work
        .path()
        .join("res #%j 'q' \"d\" $(touch PWN) `touch PWN2` ✓");
    let o = vqm(&[
        "batch",
        s(&m),
        "--out",
        s(&res),
        "--emit",
        "slurm",
        "--rows-per-task",
        "2",
        "-m",
        "psnr,ssim",
        "--threads",
        "1",
    ]);
    let (code, script, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(script.contains("#SBATCH --array=0-2\n"), "{script}");
    let job = work.path().join("job.sbatch");
    std::fs::write(&job, &script).unwrap();

    let cluster = Cluster::start();
    let o = cluster
        .command("timeout")
        .args(["180", "sbatch", "--wait", "--parsable"])
        .arg(format!("--chdir={}", work.path().display()))
        .arg(&job)
        .output()
        .unwrap();
    let (code, out, err) = outcome(&o);
    let task_logs: String = std::fs::read_dir(&res)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_eq!(
        code,
        0,
        "sbatch: {out}{err}\ntasks: {task_logs}{}",
        cluster.logs()
    );
    drop(cluster);
    let logs = std::fs::read_dir(&res)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
        .count();
    assert_eq!(logs, 3, "each task's Slurm log is in --out");
    let pwned: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("PWN"))
        .collect();
    assert!(pwned.is_empty(), "{pwned:?}");

    let merged = work.path().join("slurm.csv");
    let o = vqm(&["merge", s(&res), "--manifest", s(&m), "--out", s(&merged)]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let whole = work.path().join("whole");
    let o = vqm(&[
        "batch",
        s(&m),
        "--out",
        s(&whole),
        "-m",
        "psnr,ssim",
        "--threads",
        "1",
        "-q",
    ]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let one = work.path().join("one.csv");
    let o = vqm(&["merge", s(&whole), "--manifest", s(&m), "--out", s(&one)]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let (a, b) = (
        std::fs::read_to_string(&merged).unwrap(),
        std::fs::read_to_string(&one).unwrap(),
    );
    assert_eq!(a.lines().count(), 6, "{a}");
    assert_eq!(a, b, "the array's results are the one-process batch's");
    // each task's rows carry its shard
    for (id, shard) in [("dist", "0/3"), ("r270", "1/3"), ("again", "2/3")] {
        let log = ndjson(&std::fs::read_to_string(res.join(format!("{id}.ndjson"))).unwrap());
        assert_eq!(log[0]["batch"]["shard"], shard, "{id}");
    }
}
