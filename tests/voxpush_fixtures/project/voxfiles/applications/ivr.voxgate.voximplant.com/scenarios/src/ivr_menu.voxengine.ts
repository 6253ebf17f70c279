// A TypeScript scenario: voxpush builds it with tsc as voxengine-ci does.
const menuTimeout: number = 5000;

function describeMenu(options: string[]): string {
  return options.map((option, index) => `${index + 1}: ${option}`).join(", ");
}

VoxEngine.addEventListener(AppEvents.CallAlerting, (event: any) => {
  Logger.write(`menu ${describeMenu(["sales", "support"])} within ${menuTimeout} ms`);
  event.call.answer();
});
