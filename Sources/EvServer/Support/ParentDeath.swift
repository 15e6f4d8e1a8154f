internal import CLibEv

#if canImport(Glibc)
import Glibc
#endif

/// A worker process that must not outlive its supervisor (evserved `--workers`).
package enum ParentDeath {
    /// Asks the kernel to send `signal` to this process when its parent dies (`PR_SET_PDEATHSIG`), and, in
    /// case the parent died before that, sends it now. - Parameter parent: the pid the parent had.
    package static func signal(_ signal: Int32, whenParentDies parent: Int32) {
        _ = CLibEv_prctl_set_pdeathsig(signal)
        if getppid() != parent { kill(getpid(), signal) }
    }
}
