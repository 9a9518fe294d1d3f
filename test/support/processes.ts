/** Whether a process still runs (a zombie counts as gone): the same check the stage lock makes. */
export { isAlive } from '../../activities/process-groups.js';
