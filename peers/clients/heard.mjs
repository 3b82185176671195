// What a test client heard of one kind of notification, in order, and a wait for the next ones.
// The wait is for notifications that must come; its bound of 30 s keeps a lost one from hanging
// the test, and is never what a test checks.
export function heardLog() {
  const heard = [];
  let waiting = [];
  return {
    heard,
    record(item) {
      heard.push(item);
      for (const wake of waiting) wake();
      waiting = [];
    },
    async atLeast(count) {
      const deadline = Date.now() + 30000;
      while (heard.length < count && Date.now() < deadline) {
        await new Promise((resolve) => {
          waiting.push(resolve);
          setTimeout(resolve, deadline - Date.now());
        });
      }
    },
  };
}
