import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { Services, ServicesContext } from './services';
import { App } from './shell/App';
import { initTheme } from './shell/theme';

initTheme();

const services = new Services();
void services.resume();

render(
  <ServicesContext.Provider value={services}>
    <App />
  </ServicesContext.Provider>,
  document.getElementById('app')!,
);
